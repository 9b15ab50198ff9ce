package io.userops;

import java.math.BigDecimal;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;

/**
 * A cart to quote ({@link Engine#quote(Cart, User)}): when, the lines (prices as
 * {@link BigDecimal}, never rounded through a double) and where. The engine checks it when it
 * is quoted: a bad line is an {@link InvalidArgumentException} whose {@code field()} names it
 * ({@code "cart.lines[0].price"}).
 *
 * <pre>{@code
 * Cart cart = new Cart(Instant.parse("2026-03-08T04:00:00Z"))
 *     .line("sku-1", "beauty", new BigDecimal("199.00"), 1)
 *     .channel("app");
 * }</pre>
 */
public final class Cart {
    private final Instant time;
    private final List<String> lines = new ArrayList<>();
    private String channel;
    private String region;
    private String store;
    private String currency;

    /** An empty cart for an order placed at {@code time}. */
    public Cart(Instant time) {
        this.time = time;
    }

    /** Add a line: {@code qty} units of {@code sku} (in {@code category}) at unit {@code price}. */
    public Cart line(String sku, String category, BigDecimal price, long qty) {
        lines.add("{\"sku\": " + str(sku) + ", \"category\": " + str(category) + ", \"price\": "
            + (price == null ? "null" : str(price.toPlainString())) + ", \"qty\": " + qty + "}");
        return this;
    }

    /** The sales channel. */
    public Cart channel(String channel) {
        this.channel = channel;
        return this;
    }

    /** The region. */
    public Cart region(String region) {
        this.region = region;
        return this;
    }

    /** The store. */
    public Cart store(String store) {
        this.store = store;
        return this;
    }

    /** The currency (the engine accepts its own only). */
    public Cart currency(String currency) {
        this.currency = currency;
        return this;
    }

    /** The cart as the {@code quote} method's JSON. */
    public String toJson() {
        StringBuilder b = new StringBuilder();
        b.append("{\"time\": ").append(time == null ? "null" : str(time.toString()));
        b.append(", \"lines\": [").append(String.join(", ", lines)).append("]");
        if (channel != null) {
            b.append(", \"channel\": ").append(str(channel));
        }
        if (region != null) {
            b.append(", \"region\": ").append(str(region));
        }
        if (store != null) {
            b.append(", \"store\": ").append(str(store));
        }
        if (currency != null) {
            b.append(", \"currency\": ").append(str(currency));
        }
        return b.append("}").toString();
    }

    @Override
    public String toString() {
        return toJson();
    }

    /** A JSON string literal (null for null). */
    static String str(String s) {
        if (s == null) {
            return "null";
        }
        StringBuilder b = new StringBuilder(s.length() + 2).append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"':
                    b.append("\\\"");
                    break;
                case '\\':
                    b.append("\\\\");
                    break;
                case '\n':
                    b.append("\\n");
                    break;
                case '\r':
                    b.append("\\r");
                    break;
                case '\t':
                    b.append("\\t");
                    break;
                default:
                    if (c < 0x20) {
                        b.append(String.format("\\u%04x", (int) c));
                    } else {
                        b.append(c);
                    }
            }
        }
        return b.append('"').toString();
    }
}
