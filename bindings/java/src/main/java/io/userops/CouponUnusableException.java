package io.userops;

/**
 * A coupon cannot be used (or returned) in its state, window or on this cart
 * ({@code coupon_unusable}). Python: {@code userops.CouponUnusable}.
 */
public class CouponUnusableException extends UserOpsException {
    private static final long serialVersionUID = 1L;

    CouponUnusableException(int status, String code, String message, String field) {
        super(status, code, message, field);
    }
}
