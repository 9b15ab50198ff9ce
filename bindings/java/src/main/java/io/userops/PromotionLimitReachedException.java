package io.userops;

/**
 * A promotion's per-user or total limit, or a coupon template's stock, is reached
 * ({@code promotion_limit_reached}). Python: {@code userops.PromotionLimitReached}.
 */
public class PromotionLimitReachedException extends UserOpsException {
    private static final long serialVersionUID = 1L;

    PromotionLimitReachedException(int status, String code, String message, String field) {
        super(status, code, message, field);
    }
}
