package io.userops;

/** What a ledger write did ({@link Engine#earn}, {@link Engine#spend}, post, void). */
public final class Posting {
    private final long points;
    private final long balance;
    private final long transfer;
    private final boolean pending;
    private final boolean duplicate;

    Posting(long points, long balance, long transfer, boolean pending, boolean duplicate) {
        this.points = points;
        this.balance = balance;
        this.transfer = transfer;
        this.pending = pending;
        this.duplicate = duplicate;
    }

    /** Points moved for the member (positive; for post and void the pending earn's points). */
    public long points() {
        return points;
    }

    /** The member's posted balance right after the write. */
    public long balance() {
        return balance;
    }

    /** The id of the last ledger transfer the write made (a replay reports the original's). */
    public long transfer() {
        return transfer;
    }

    /** True when the points are pending (a pending earn). */
    public boolean pending() {
        return pending;
    }

    /** True when the idempotency key had been seen with the same content: nothing changed. */
    public boolean duplicate() {
        return duplicate;
    }

    @Override
    public String toString() {
        return "Posting{points=" + points + ", balance=" + balance + ", transfer=" + transfer + ", pending=" + pending
            + ", duplicate=" + duplicate + "}";
    }
}
