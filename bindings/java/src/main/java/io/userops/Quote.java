package io.userops;

import com.sun.jna.Pointer;
import java.math.BigDecimal;

/**
 * An evaluated promotion quote ({@link Engine#quote(Cart, User)}): the cart's subtotal,
 * discount and total, the promotions that applied and those that did not. Immutable and
 * thread-safe; nothing is reserved until {@link Engine#commit}. Close it (try-with-resources)
 * to free its native memory; closing twice is harmless; after close every method throws
 * {@link ClosedException}.
 */
public final class Quote implements AutoCloseable {
    private final NativeHandle handle;
    private final BigDecimal subtotal;
    private final BigDecimal discount;
    private final BigDecimal total;
    private final String appliedJson;
    private final String notAppliedJson;
    private final String json;

    /** Takes ownership of a live quote handle (freed here if reading it fails). */
    Quote(Pointer q) {
        NativeLib lib = NativeLib.LIB;
        handle = new NativeHandle("quote", q, lib::userops_quote_free);
        try {
            subtotal = new BigDecimal(read(lib.userops_quote_subtotal(q)));
            discount = new BigDecimal(read(lib.userops_quote_discount(q)));
            total = new BigDecimal(read(lib.userops_quote_total(q)));
            appliedJson = read(lib.userops_quote_applied_json(q));
            notAppliedJson = read(lib.userops_quote_not_applied_json(q));
            json = read(lib.userops_quote_json(q));
        } catch (RuntimeException e) {
            handle.close();
            throw e;
        }
    }

    private static String read(String s) {
        if (s == null) {
            throw UserOpsException.last(NativeLib.LIB.userops_last_error_code());
        }
        return s;
    }

    private <T> T live(T value) {
        return handle.use(p -> value);
    }

    /** The cart's subtotal. */
    public BigDecimal subtotal() {
        return live(subtotal);
    }

    /** The sum of the discounts. */
    public BigDecimal discount() {
        return live(discount);
    }

    /** subtotal - discount (never negative). */
    public BigDecimal total() {
        return live(total);
    }

    /** The promotions that applied, in order, as JSON: {@code [{"id", "discount", "lines", ...}]}. */
    public String appliedJson() {
        return live(appliedJson);
    }

    /** Every other promotion with a stable reason code, as JSON: {@code [{"id", "code", "reason"}]}. */
    public String notAppliedJson() {
        return live(notAppliedJson);
    }

    /** The whole quote as JSON (what the {@code quote} method returns). */
    public String json() {
        return live(json);
    }

    /** Run {@code call} on the live handle (for {@link Engine#commit}). */
    <T> T use(NativeHandle.Call<T> call) {
        return handle.use(call);
    }

    /** Free the quote. Waits for calls in flight; a second close does nothing. */
    @Override
    public void close() {
        handle.close();
    }

    @Override
    public String toString() {
        return "Quote{subtotal=" + subtotal + ", discount=" + discount + ", total=" + total + "}";
    }
}
