package io.userops;

import java.util.Optional;
import java.util.OptionalLong;

/** One action of an automation run's delivery plan ({@link Engine#automationPlan}). */
public final class PlannedAction {
    private final Long touchId;
    private final long user;
    private final String action;
    private final String channel;
    private final String content;
    private final String couponId;
    private final Long points;
    private final String program;
    private final String key;
    private final String tag;
    private final String rule;
    private final String reason;

    PlannedAction(Long touchId, long user, String action, String channel, String content, String couponId,
        Long points, String program, String key, String tag, String rule, String reason) {
        this.touchId = touchId;
        this.user = user;
        this.action = action;
        this.channel = channel;
        this.content = content;
        this.couponId = couponId;
        this.points = points;
        this.program = program;
        this.key = key;
        this.tag = tag;
        this.rule = rule;
        this.reason = reason;
    }

    /** The recorded touch (touches only). */
    public OptionalLong touchId() {
        return touchId == null ? OptionalLong.empty() : OptionalLong.of(touchId);
    }

    /** The person (OneID). */
    public long user() {
        return user;
    }

    /** {@code touch}, {@code issue_coupon}, {@code grant_points} or {@code add_tag}. */
    public String action() {
        return action;
    }

    /** The channel of a touch. */
    public Optional<String> channel() {
        return Optional.ofNullable(channel);
    }

    /** The content of a touch. */
    public Optional<String> content() {
        return Optional.ofNullable(content);
    }

    /** The coupon issued. */
    public Optional<String> couponId() {
        return Optional.ofNullable(couponId);
    }

    /** The points granted. */
    public OptionalLong points() {
        return points == null ? OptionalLong.empty() : OptionalLong.of(points);
    }

    /** The program of granted points. */
    public Optional<String> program() {
        return Optional.ofNullable(program);
    }

    /** The idempotency key of granted points. */
    public Optional<String> key() {
        return Optional.ofNullable(key);
    }

    /** The tag added. */
    public Optional<String> tag() {
        return Optional.ofNullable(tag);
    }

    /** The rule that planned it. */
    public String rule() {
        return rule;
    }

    /** Why. */
    public String reason() {
        return reason;
    }

    @Override
    public String toString() {
        return "PlannedAction{user=" + user + ", action=" + action + ", rule=" + rule + ", reason=" + reason + "}";
    }
}
