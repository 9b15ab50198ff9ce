package io.userops;

/**
 * A call argument is malformed: bad JSON, a wrong shape, a bad field ({@code invalid_argument}); also a
 * required argument passed as null ({@code null_pointer}) or a string that is not UTF-8
 * ({@code invalid_utf8}). Python: {@code userops.InvalidArgument}.
 */
public class InvalidArgumentException extends UserOpsException {
    private static final long serialVersionUID = 1L;

    InvalidArgumentException(int status, String code, String message, String field) {
        super(status, code, message, field);
    }
}
