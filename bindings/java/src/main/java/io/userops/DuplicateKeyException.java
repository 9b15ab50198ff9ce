package io.userops;

/**
 * An idempotency key was reused for different content ({@code duplicate_key}). Python:
 * {@code userops.DuplicateKey}.
 */
public class DuplicateKeyException extends UserOpsException {
    private static final long serialVersionUID = 1L;

    DuplicateKeyException(int status, String code, String message, String field) {
        super(status, code, message, field);
    }
}
