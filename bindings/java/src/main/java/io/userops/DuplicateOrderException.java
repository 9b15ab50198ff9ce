package io.userops;

/**
 * An order id already ingested from the same source program under another idempotency key
 * ({@code duplicate_order}): an order counts once. Also a {@link DuplicateKeyException}, as
 * Python's {@code userops.DuplicateOrder} is also a {@code userops.DuplicateKey}.
 */
public class DuplicateOrderException extends DuplicateKeyException {
    private static final long serialVersionUID = 1L;

    DuplicateOrderException(int status, String code, String message, String field) {
        super(status, code, message, field);
    }
}
