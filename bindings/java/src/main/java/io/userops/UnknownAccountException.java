package io.userops;

/**
 * The member has no points account in the program ({@code unknown_account}). Python:
 * {@code userops.UnknownAccount}.
 */
public class UnknownAccountException extends LedgerException {
    private static final long serialVersionUID = 1L;

    UnknownAccountException(int status, String code, String message, String field) {
        super(status, code, message, field);
    }
}
