package io.userops;

import com.sun.jna.IntegerType;
import com.sun.jna.Library;
import com.sun.jna.Native;
import com.sun.jna.Pointer;
import com.sun.jna.Structure;
import com.sun.jna.ptr.LongByReference;
import com.sun.jna.ptr.PointerByReference;
import java.util.Collections;

/**
 * The C ABI (userops.h) as JNA sees it. Package-private: only the wrappers call it, and they
 * free what it hands out.
 *
 * <p>JNA finds {@code libuserops.so} on {@code -Djna.library.path}, the system library path,
 * and last in this jar's resources under its platform prefix ({@code linux-x86-64/}), where
 * {@code scripts/build-java} puts it.
 */
interface NativeLib extends Library {
    NativeLib LIB = Native.load("userops", NativeLib.class,
        Collections.singletonMap(Library.OPTION_STRING_ENCODING, "UTF-8"));

    /** A C {@code size_t}. */
    final class SizeT extends IntegerType {
        private static final long serialVersionUID = 1L;

        public SizeT() {
            this(0);
        }

        public SizeT(long value) {
            super(Native.SIZE_T_SIZE, value, true);
        }
    }

    /** {@code struct userops_user}. */
    @Structure.FieldOrder({"kind", "value", "oneid"})
    final class CUser extends Structure {
        public String kind;
        public String value;
        public long oneid;

        static CUser of(User user) {
            if (user == null) {
                return null;
            }
            CUser u = new CUser();
            u.kind = user.kind();
            u.value = user.value();
            u.oneid = user.kind() == null ? user.oneid() : 0;
            return u;
        }
    }

    /** {@code struct userops_link_result}. */
    @Structure.FieldOrder({"oneid", "seq", "absorbed", "duplicate"})
    final class CLinkResult extends Structure {
        public long oneid;
        public long seq;
        public long absorbed;
        public int duplicate;
    }

    /** {@code struct userops_posting}. */
    @Structure.FieldOrder({"points", "balance", "transfer", "pending", "duplicate"})
    final class CPosting extends Structure {
        public long points;
        public long balance;
        public long transfer;
        public int pending;
        public int duplicate;
    }

    /** {@code struct userops_tier_evaluation}. */
    @Structure.FieldOrder({"members", "upgraded", "downgraded", "grace"})
    final class CTierEvaluation extends Structure {
        public long members;
        public long upgraded;
        public long downgraded;
        public long grace;
    }

    Pointer userops_engine_new();

    int userops_engine_open(String path, PointerByReference engine);

    int userops_engine_new_with(String concurrency, PointerByReference engine);

    int userops_engine_open_with(String path, String durability, String concurrency, PointerByReference engine);

    void userops_engine_free(Pointer engine);

    int userops_engine_ingest_json(Pointer engine, String eventJson, PointerByReference receipt);

    int userops_engine_call(Pointer engine, String method, String argsJson, PointerByReference result);

    int userops_table_call(String method, String argsJson, PointerByReference result);

    String userops_last_error_message();

    int userops_last_error_code();

    String userops_last_error_field();

    String userops_status_name(int status);

    void userops_string_free(Pointer s);

    String userops_version();

    int userops_audience_eval(Pointer engine, String expression, PointerByReference out);

    long userops_audience_len(Pointer audience);

    int userops_audience_oneids(Pointer audience, long offset, long[] buf, SizeT capacity, Pointer written);

    void userops_audience_free(Pointer audience);

    int userops_identity_resolve_arrow(Pointer engine, String kind, Arrow.CArray values,
        Arrow.CSchema valuesSchema, Arrow.CArray outArray, Arrow.CSchema outSchema);

    int userops_quote_evaluate(Pointer engine, String cartJson, CUser user, PointerByReference out);

    String userops_quote_subtotal(Pointer quote);

    String userops_quote_discount(Pointer quote);

    String userops_quote_total(Pointer quote);

    String userops_quote_applied_json(Pointer quote);

    String userops_quote_not_applied_json(Pointer quote);

    String userops_quote_json(Pointer quote);

    int userops_quote_commit(Pointer engine, Pointer quote, String key, PointerByReference receiptJson);

    int userops_quote_cancel(Pointer engine, String key, PointerByReference receiptJson);

    void userops_quote_free(Pointer quote);

    int userops_identity_link(Pointer engine, String key, String time, String platform, String program,
        String[] kinds, String[] values, SizeT n, CLinkResult out);

    int userops_identity_resolve(Pointer engine, String kind, String value, LongByReference oneid);

    int userops_identity_explain(Pointer engine, String kindA, String valueA, String kindB, String valueB,
        PointerByReference explanationJson);

    int userops_identity_merge(Pointer engine, CUser a, CUser b, String actor, String reason, String time,
        LongByReference survivor, PointerByReference reportJson);

    int userops_identity_split(Pointer engine, String[] evidence, SizeT n, String actor, String reason,
        String time, PointerByReference reportJson);

    int userops_loyalty_earn(Pointer engine, CUser user, String program, long points, String key, String time,
        int pending, CPosting out);

    int userops_loyalty_spend(Pointer engine, CUser user, String program, long points, String key, String time,
        CPosting out);

    int userops_loyalty_post(Pointer engine, String earnKey, String time, CPosting out);

    int userops_loyalty_void(Pointer engine, String earnKey, String time, CPosting out);

    int userops_loyalty_balance(Pointer engine, CUser user, String program, LongByReference balance);

    int userops_loyalty_statement(Pointer engine, CUser user, String program, Arrow.CArray outArray,
        Arrow.CSchema outSchema);

    int userops_loyalty_tier(Pointer engine, CUser user, String program, String now, PointerByReference tier,
        PointerByReference viewJson);

    int userops_loyalty_evaluate_tiers(Pointer engine, String now, CTierEvaluation out);

    int userops_lifecycle_report(Pointer engine, int churnAfter, String through, PointerByReference reportJson);

    int userops_lifecycle_stages(Pointer engine, String period, int churnAfter, Arrow.CArray outArray,
        Arrow.CSchema outSchema);

    int userops_automation_plan(Pointer engine, String now, Arrow.CArray outArray, Arrow.CSchema outSchema);
}
