package io.userops;

/**
 * A model fit did not converge; nothing was fitted ({@code not_converged}). Python:
 * {@code userops.NotConverged}.
 */
public class NotConvergedException extends UserOpsException {
    private static final long serialVersionUID = 1L;

    NotConvergedException(int status, String code, String message, String field) {
        super(status, code, message, field);
    }
}
