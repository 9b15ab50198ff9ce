package io.userops;

/**
 * A zero, negative or overflowing amount ({@code invalid_amount}). Python: {@code userops.InvalidAmount}.
 */
public class InvalidAmountException extends LedgerException {
    private static final long serialVersionUID = 1L;

    InvalidAmountException(int status, String code, String message, String field) {
        super(status, code, message, field);
    }
}
