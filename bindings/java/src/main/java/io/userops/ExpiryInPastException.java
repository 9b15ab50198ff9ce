package io.userops;

/**
 * An expiry at or before the time of the earn ({@code expiry_in_past}). Python: {@code userops.ExpiryInPast}.
 */
public class ExpiryInPastException extends LedgerException {
    private static final long serialVersionUID = 1L;

    ExpiryInPastException(int status, String code, String message, String field) {
        super(status, code, message, field);
    }
}
