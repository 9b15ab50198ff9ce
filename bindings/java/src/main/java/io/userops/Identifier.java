package io.userops;

import java.util.Objects;

/**
 * An identifier: a kind ({@code "phone"}, {@code "email"}, {@code "member_no"},
 * {@code "device_id"}, ...) and a value. The library normalizes the value: any spelling of a
 * phone finds the same person. Immutable.
 */
public final class Identifier {
    private final String kind;
    private final String value;

    private Identifier(String kind, String value) {
        this.kind = kind;
        this.value = value;
    }

    /** An identifier; the library checks it when it is used. */
    public static Identifier of(String kind, String value) {
        return new Identifier(kind, value);
    }

    /** The kind, e.g. {@code "phone"}. */
    public String kind() {
        return kind;
    }

    /** The value as given. */
    public String value() {
        return value;
    }

    @Override
    public boolean equals(Object o) {
        if (!(o instanceof Identifier)) {
            return false;
        }
        Identifier other = (Identifier) o;
        return Objects.equals(kind, other.kind) && Objects.equals(value, other.value);
    }

    @Override
    public int hashCode() {
        return Objects.hash(kind, value);
    }

    @Override
    public String toString() {
        return kind + ":" + value;
    }
}
