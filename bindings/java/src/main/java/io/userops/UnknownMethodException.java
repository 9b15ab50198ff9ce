package io.userops;

/**
 * The engine has no such method ({@code unknown_method}). Python: {@code userops.UnknownMethod}.
 */
public class UnknownMethodException extends UserOpsException {
    private static final long serialVersionUID = 1L;

    UnknownMethodException(int status, String code, String message, String field) {
        super(status, code, message, field);
    }
}
