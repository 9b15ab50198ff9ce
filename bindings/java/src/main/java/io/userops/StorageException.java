package io.userops;

/**
 * The durable store failed: I/O, a directory, a read-only or foreign file, a newer schema
 * ({@code storage}). Python: {@code userops.StorageError}.
 */
public class StorageException extends UserOpsException {
    private static final long serialVersionUID = 1L;

    StorageException(int status, String code, String message, String field) {
        super(status, code, message, field);
    }
}
