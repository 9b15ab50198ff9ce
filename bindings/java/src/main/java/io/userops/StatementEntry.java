package io.userops;

import java.time.Instant;
import java.util.Optional;

/** One posting of a member's points statement ({@link Engine#statement}), in ledger order. */
public final class StatementEntry {
    private final long id;
    private final Instant time;
    private final String kind;
    private final String key;
    private final long amount;
    private final long balance;
    private final boolean pending;
    private final String counterparty;
    private final Instant expires;
    private final String reason;
    private final String actor;

    StatementEntry(long id, Instant time, String kind, String key, long amount, long balance, boolean pending,
        String counterparty, Instant expires, String reason, String actor) {
        this.id = id;
        this.time = time;
        this.kind = kind;
        this.key = key;
        this.amount = amount;
        this.balance = balance;
        this.pending = pending;
        this.counterparty = counterparty;
        this.expires = expires;
        this.reason = reason;
        this.actor = actor;
    }

    /** The posting's id (ascending). */
    public long id() {
        return id;
    }

    /** When it was posted. */
    public Instant time() {
        return time;
    }

    /**
     * {@code earn}, {@code pending_earn}, {@code post}, {@code void}, {@code spend}, {@code expire},
     * {@code reversal}, {@code clawback}, {@code convert_out}, {@code convert_in} or {@code merge}.
     */
    public String kind() {
        return kind;
    }

    /** The idempotency key of the write. */
    public String key() {
        return key;
    }

    /** Points in (+) or out (-). */
    public long amount() {
        return amount;
    }

    /** The posted balance after this row. */
    public long balance() {
        return balance;
    }

    /** True for points still pending. */
    public boolean pending() {
        return pending;
    }

    /** The other side of the transfer. */
    public String counterparty() {
        return counterparty;
    }

    /** When the points expire, if they do. */
    public Optional<Instant> expires() {
        return Optional.ofNullable(expires);
    }

    /** Why (free text). */
    public String reason() {
        return reason;
    }

    /** Who. */
    public String actor() {
        return actor;
    }

    @Override
    public String toString() {
        return "StatementEntry{id=" + id + ", time=" + time + ", kind=" + kind + ", key=" + key + ", amount=" + amount
            + ", balance=" + balance + ", pending=" + pending + "}";
    }
}
