package io.userops;

/** A person's lifecycle stage in one period ({@link Engine#lifecycleStages}). */
public final class LifecycleStage {
    private final long oneid;
    private final String period;
    private final String stage;

    LifecycleStage(long oneid, String period, String stage) {
        this.oneid = oneid;
        this.period = period;
        this.stage = stage;
    }

    /** The person. */
    public long oneid() {
        return oneid;
    }

    /** The period's label, e.g. {@code "2026-01"}. */
    public String period() {
        return period;
    }

    /**
     * {@code new}, {@code last_period_new}, {@code active}, {@code awakened}, {@code returned},
     * {@code dormant} or {@code churned}.
     */
    public String stage() {
        return stage;
    }

    @Override
    public String toString() {
        return "LifecycleStage{oneid=" + oneid + ", period=" + period + ", stage=" + stage + "}";
    }
}
