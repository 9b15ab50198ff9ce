package io.userops;

/**
 * Posting or voiding what is not an open pending earn; refunding what has nothing left
 * ({@code not_pending}). Python: {@code userops.NotPending}.
 */
public class NotPendingException extends LedgerException {
    private static final long serialVersionUID = 1L;

    NotPendingException(int status, String code, String message, String field) {
        super(status, code, message, field);
    }
}
