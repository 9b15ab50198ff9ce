package io.userops;

/**
 * Base class of every error userops reports. A call that throws changed nothing.
 *
 * <p>Each carries {@link #status()} (the C status number, stable), {@link #code()} (its stable
 * name, as Python's {@code UserOpsError.code} spells it: {@code "insufficient_points"}) and,
 * where the error is about one argument, {@link #field()} (a path such as {@code "ids[1]"} or
 * {@code "cart.lines[0].price"}). Catch a subclass to handle one family: the hierarchy mirrors
 * Python's ({@code userops.errors}), with {@link LedgerException} over the loyalty errors.
 *
 * <pre>{@code
 * try {
 *     engine.spend(User.id("member_no", "M1"), "brand-a", 500, "redeem-9", null);
 * } catch (InsufficientPointsException e) {
 *     System.out.println(e.code() + ": " + e.getMessage());
 * }
 * }</pre>
 */
public class UserOpsException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    static final int INVALID_ARGUMENT = 1;
    static final int INVALID_HANDLE = 22;
    static final int INTERNAL = 99;

    /** The C status number. */
    private final int status;
    /** The status's stable name. */
    private final String code;
    /** The argument path at fault, or null. */
    private final String field;

    UserOpsException(int status, String code, String message, String field) {
        super(message);
        this.status = status;
        this.code = code;
        this.field = field;
    }

    /** The C status number ({@code UOPS_*} in userops.h): stable across releases. */
    public int status() {
        return status;
    }

    /** The stable name of the status, e.g. {@code "not_found"}. */
    public String code() {
        return code;
    }

    /** The argument path the error is about ({@code "ids[1]"}), or null when it names none. */
    public String field() {
        return field;
    }

    /** The stable name of a C status, or {@code "status_N"} for a number the library does not know. */
    static String codeOf(int status) {
        String name = NativeLib.LIB.userops_status_name(status);
        return name != null ? name : "status_" + status;
    }

    /**
     * The exception for a C status: the one place statuses map to classes. A status without a
     * case here becomes a plain {@code UserOpsException} (the tests fail on that).
     */
    static UserOpsException of(int status, String message, String field) {
        String code = codeOf(status);
        switch (status) {
            case 1: // invalid_argument
            case 20: // null_pointer
            case 21: // invalid_utf8
                return new InvalidArgumentException(status, code, message, field);
            case 2:
                return new InvalidIdentifierException(status, code, message, field);
            case 3:
                return new InvalidEventException(status, code, message, field);
            case 4:
                return new UnknownMethodException(status, code, message, field);
            case 5:
                return new DuplicateKeyException(status, code, message, field);
            case 6:
                return new NotFoundException(status, code, message, field);
            case 7:
                return new OutOfRangeException(status, code, message, field);
            case 22:
                return new ClosedException(status, code, message, field);
            case 40:
                return new AudienceSyntaxException(status, code, message, field);
            case 50:
                return new InsufficientPointsException(status, code, message, field);
            case 51:
                return new LedgerDuplicateKeyException(status, code, message, field);
            case 52:
                return new UnknownAccountException(status, code, message, field);
            case 53:
                return new InvalidAmountException(status, code, message, field);
            case 54:
                return new ExpiryInPastException(status, code, message, field);
            case 55:
                return new NotPendingException(status, code, message, field);
            case 56:
                return new LimitReachedException(status, code, message, field);
            case 57:
                return new NotEligibleException(status, code, message, field);
            case 70:
                return new NotConvergedException(status, code, message, field);
            case 80:
                return new BudgetExhaustedException(status, code, message, field);
            case 81:
                return new PromotionLimitReachedException(status, code, message, field);
            case 82:
                return new CouponUnusableException(status, code, message, field);
            case 90:
                return new StorageException(status, code, message, field);
            case 91:
                return new CorruptStoreException(status, code, message, field);
            case 99:
                return new InternalException(status, code, message, field);
            default:
                return new UserOpsException(status, code, message, field);
        }
    }

    /** The error the library reported for {@code status} on this thread. */
    static UserOpsException last(int status) {
        NativeLib lib = NativeLib.LIB;
        return of(status, lib.userops_last_error_message(), lib.userops_last_error_field());
    }

    /** Throw the library's error unless {@code status} is success. */
    static void check(int status) {
        if (status != 0) {
            throw last(status);
        }
    }
}
