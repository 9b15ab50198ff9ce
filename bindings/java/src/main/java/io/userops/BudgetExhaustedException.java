package io.userops;

/**
 * A promotion's budget cannot cover a commit ({@code budget_exhausted}). Python:
 * {@code userops.BudgetExhausted}.
 */
public class BudgetExhaustedException extends UserOpsException {
    private static final long serialVersionUID = 1L;

    BudgetExhaustedException(int status, String code, String message, String field) {
        super(status, code, message, field);
    }
}
