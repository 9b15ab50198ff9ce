package io.userops;

/** What {@link Engine#link} did. */
public final class LinkResult {
    private final long oneid;
    private final long seq;
    private final long absorbed;
    private final boolean duplicate;

    LinkResult(long oneid, long seq, long absorbed, boolean duplicate) {
        this.oneid = oneid;
        this.seq = seq;
        this.absorbed = absorbed;
        this.duplicate = duplicate;
    }

    /** The person the identifiers now form. */
    public long oneid() {
        return oneid;
    }

    /** The event's sequence number (the first one's, for a replay). */
    public long seq() {
        return seq;
    }

    /** How many persons this link merged into {@link #oneid}. */
    public long absorbed() {
        return absorbed;
    }

    /** True when the key had been seen with the same content: nothing changed. */
    public boolean duplicate() {
        return duplicate;
    }

    @Override
    public String toString() {
        return "LinkResult{oneid=" + oneid + ", seq=" + seq + ", absorbed=" + absorbed + ", duplicate=" + duplicate
            + "}";
    }
}
