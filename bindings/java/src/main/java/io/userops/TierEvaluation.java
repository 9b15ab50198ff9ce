package io.userops;

/** What {@link Engine#evaluateTiers} did. */
public final class TierEvaluation {
    private final long members;
    private final long upgraded;
    private final long downgraded;
    private final long grace;

    TierEvaluation(long members, long upgraded, long downgraded, long grace) {
        this.members = members;
        this.upgraded = upgraded;
        this.downgraded = downgraded;
        this.grace = grace;
    }

    /** Members evaluated. */
    public long members() {
        return members;
    }

    /** Members upgraded. */
    public long upgraded() {
        return upgraded;
    }

    /** Members downgraded. */
    public long downgraded() {
        return downgraded;
    }

    /** Members below their tier, inside the grace period. */
    public long grace() {
        return grace;
    }

    @Override
    public String toString() {
        return "TierEvaluation{members=" + members + ", upgraded=" + upgraded + ", downgraded=" + downgraded
            + ", grace=" + grace + "}";
    }
}
