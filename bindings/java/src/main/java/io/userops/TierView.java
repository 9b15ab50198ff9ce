package io.userops;

import java.util.Optional;

/** A member's tier in a program ({@link Engine#tier}). */
public final class TierView {
    private final String tier;
    private final String json;

    TierView(String tier, String json) {
        this.tier = tier;
        this.json = json;
    }

    /** The tier's name; empty before the member's first tier or in a program without a ladder. */
    public Optional<String> tier() {
        return Optional.ofNullable(tier);
    }

    /**
     * The whole view as JSON: {@code {"program", "tier", "metric", "growth_total", "spend_total",
     * "next", "to_next", "downgrade_due", "history"}} (money as decimal strings).
     */
    public String json() {
        return json;
    }

    @Override
    public String toString() {
        return "TierView{tier=" + tier + ", json=" + json + "}";
    }
}
