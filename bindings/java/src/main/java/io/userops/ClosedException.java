package io.userops;

/**
 * The engine or quote was closed (or the handle is otherwise not live) ({@code invalid_handle}).
 * Thrown by every method of a closed {@link Engine} or {@link Quote}; nothing is called on freed memory.
 */
public class ClosedException extends UserOpsException {
    private static final long serialVersionUID = 1L;

    ClosedException(int status, String code, String message, String field) {
        super(status, code, message, field);
    }
}
