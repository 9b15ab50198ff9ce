package io.userops;

/**
 * An event is malformed: bad JSON, unknown kind, a missing or bad field ({@code invalid_event}).
 * Python: {@code userops.InvalidEvent}.
 */
public class InvalidEventException extends UserOpsException {
    private static final long serialVersionUID = 1L;

    InvalidEventException(int status, String code, String message, String field) {
        super(status, code, message, field);
    }
}
