package io.userops;

/**
 * The durable store holds a corrupt journal record or snapshot; the message names it
 * ({@code corrupt}). Python: {@code userops.CorruptStore}.
 */
public class CorruptStoreException extends UserOpsException {
    private static final long serialVersionUID = 1L;

    CorruptStoreException(int status, String code, String message, String field) {
        super(status, code, message, field);
    }
}
