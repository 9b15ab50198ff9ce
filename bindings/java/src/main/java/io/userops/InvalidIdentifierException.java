package io.userops;

/**
 * A value is not a valid identifier of its kind (a bad phone, email, an unknown kind)
 * ({@code invalid_identifier}). Python: {@code userops.InvalidIdentifier}.
 */
public class InvalidIdentifierException extends UserOpsException {
    private static final long serialVersionUID = 1L;

    InvalidIdentifierException(int status, String code, String message, String field) {
        super(status, code, message, field);
    }
}
