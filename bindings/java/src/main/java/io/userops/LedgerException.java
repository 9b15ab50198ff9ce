package io.userops;

/**
 * Base class of the loyalty module's errors (points ledger, tiers, benefits, tasks). Python:
 * {@code userops.LedgerError}. Where Python's class has a second base ({@code LedgerDuplicateKey}
 * is also a {@code DuplicateKey}), Java keeps this one: catch {@code LedgerException} for every
 * loyalty refusal.
 */
public class LedgerException extends UserOpsException {
    private static final long serialVersionUID = 1L;

    LedgerException(int status, String code, String message, String field) {
        super(status, code, message, field);
    }
}
