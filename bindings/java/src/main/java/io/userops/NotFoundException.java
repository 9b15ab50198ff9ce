package io.userops;

/**
 * Something referenced does not exist: a OneID, a program, a commit ({@code not_found}). Python:
 * {@code userops.NotFound}.
 */
public class NotFoundException extends UserOpsException {
    private static final long serialVersionUID = 1L;

    NotFoundException(int status, String code, String message, String field) {
        super(status, code, message, field);
    }
}
