package io.userops;

/**
 * An idempotency key reused for a different loyalty write ({@code ledger_duplicate_key}).
 * Python: {@code userops.LedgerDuplicateKey}.
 */
public class LedgerDuplicateKeyException extends LedgerException {
    private static final long serialVersionUID = 1L;

    LedgerDuplicateKeyException(int status, String code, String message, String field) {
        super(status, code, message, field);
    }
}
