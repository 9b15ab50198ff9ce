package io.userops;

/**
 * A number is out of range or would overflow ({@code out_of_range}). Python: {@code userops.OutOfRange}.
 */
public class OutOfRangeException extends UserOpsException {
    private static final long serialVersionUID = 1L;

    OutOfRangeException(int status, String code, String message, String field) {
        super(status, code, message, field);
    }
}
