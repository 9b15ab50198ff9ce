package io.userops;

/**
 * A bug inside userops (a caught panic included); please report it with the message
 * ({@code internal}). Python: {@code userops.InternalError}.
 */
public class InternalException extends UserOpsException {
    private static final long serialVersionUID = 1L;

    InternalException(int status, String code, String message, String field) {
        super(status, code, message, field);
    }
}
