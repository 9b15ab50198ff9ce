package io.userops;

/**
 * A spend or conversion above the balance (plus the program's overdraft)
 * ({@code insufficient_points}). Python: {@code userops.InsufficientPoints}.
 */
public class InsufficientPointsException extends LedgerException {
    private static final long serialVersionUID = 1L;

    InsufficientPointsException(int status, String code, String message, String field) {
        super(status, code, message, field);
    }
}
