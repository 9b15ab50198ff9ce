package io.userops;

import java.util.Objects;

/**
 * A reference to a user: an identifier (the person it belongs to) or a OneID. Immutable.
 *
 * <pre>{@code
 * User byPhone = User.id("phone", "13800138000");
 * User byOneId = User.oneid(42);
 * }</pre>
 */
public final class User {
    private final String kind; // null for a OneID
    private final String value;
    private final long oneid;

    private User(String kind, String value, long oneid) {
        this.kind = kind;
        this.value = value;
        this.oneid = oneid;
    }

    /** The person an identifier belongs to; a null kind or value is refused. */
    public static User id(String kind, String value) {
        if (kind == null || value == null) {
            String field = kind == null ? "user.kind" : "user.value";
            throw UserOpsException.of(UserOpsException.INVALID_ARGUMENT,
                "invalid argument at `" + field + "`: null", field);
        }
        return new User(kind, value, 0);
    }

    /** The person an identifier belongs to. */
    public static User of(Identifier id) {
        return id(id.kind(), id.value());
    }

    /** The person with this OneID (OneIDs start at 1). */
    public static User oneid(long oneid) {
        return new User(null, null, oneid);
    }

    /** The identifier kind, or null for a OneID reference. */
    public String kind() {
        return kind;
    }

    /** The identifier value, or null for a OneID reference. */
    public String value() {
        return value;
    }

    /** The OneID, or 0 for an identifier reference. */
    public long oneid() {
        return oneid;
    }

    @Override
    public boolean equals(Object o) {
        if (!(o instanceof User)) {
            return false;
        }
        User other = (User) o;
        return Objects.equals(kind, other.kind) && Objects.equals(value, other.value) && oneid == other.oneid;
    }

    @Override
    public int hashCode() {
        return Objects.hash(kind, value, oneid);
    }

    @Override
    public String toString() {
        return kind == null ? "oneid:" + oneid : kind + ":" + value;
    }
}
