package io.userops;

/** What {@link Engine#merge} did. */
public final class MergeResult {
    private final long survivor;
    private final String reportJson;

    MergeResult(long survivor, String reportJson) {
        this.survivor = survivor;
        this.reportJson = reportJson;
    }

    /** The surviving OneID. */
    public long survivor() {
        return survivor;
    }

    /** The merge report as JSON: {@code {"survivor", "absorbed": [N], "identifiers_moved", ...}}. */
    public String reportJson() {
        return reportJson;
    }

    @Override
    public String toString() {
        return "MergeResult{survivor=" + survivor + ", report=" + reportJson + "}";
    }
}
