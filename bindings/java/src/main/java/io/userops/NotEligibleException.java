package io.userops;

/**
 * A benefit the member's tier does not grant ({@code not_eligible}). Python: {@code userops.NotEligible}.
 */
public class NotEligibleException extends LedgerException {
    private static final long serialVersionUID = 1L;

    NotEligibleException(int status, String code, String message, String field) {
        super(status, code, message, field);
    }
}
