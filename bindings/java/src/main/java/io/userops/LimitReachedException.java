package io.userops;

/**
 * A benefit claimed or a task completed more often than allowed ({@code limit_reached}). Python:
 * {@code userops.LimitReached}.
 */
public class LimitReachedException extends LedgerException {
    private static final long serialVersionUID = 1L;

    LimitReachedException(int status, String code, String message, String field) {
        super(status, code, message, field);
    }
}
