// The C ABI from Java through JNA, run as a single-file program: java -cp jna.jar UseropsTest.java
// The same scenario as the C and C++ tests (ingest, merge, earn/spend, audience, quote) through
// the typed functions, with Arrow exports read and released.
import com.sun.jna.Callback;
import com.sun.jna.Library;
import com.sun.jna.Native;
import com.sun.jna.Pointer;
import com.sun.jna.Structure;
import com.sun.jna.ptr.LongByReference;
import com.sun.jna.ptr.PointerByReference;

public class UseropsTest {
    /** A user: an identifier (kind, value) or, with kind null, a OneID. */
    @Structure.FieldOrder({"kind", "value", "oneid"})
    public static class User extends Structure {
        public String kind;
        public String value;
        public long oneid;

        static User id(String kind, String value) {
            User u = new User();
            u.kind = kind;
            u.value = value;
            return u;
        }

        static User oneid(long oneid) {
            User u = new User();
            u.oneid = oneid;
            return u;
        }
    }

    @Structure.FieldOrder({"points", "balance", "transfer", "pending", "duplicate"})
    public static class Posting extends Structure {
        public long points;
        public long balance;
        public long transfer;
        public int pending;
        public int duplicate;
    }

    @Structure.FieldOrder({"oneid", "seq", "absorbed", "duplicate"})
    public static class LinkResult extends Structure {
        public long oneid;
        public long seq;
        public long absorbed;
        public int duplicate;
    }

    public interface ReleaseArray extends Callback {
        void invoke(Pointer array);
    }

    /** struct ArrowArray (the Arrow C Data Interface). */
    @Structure.FieldOrder({"length", "null_count", "offset", "n_buffers", "n_children", "buffers", "children",
        "dictionary", "release", "private_data"})
    public static class ArrowArray extends Structure {
        public long length, null_count, offset, n_buffers, n_children;
        public Pointer buffers, children, dictionary;
        public ReleaseArray release;
        public Pointer private_data;

        public ArrowArray() {}

        public ArrowArray(Pointer p) {
            super(p);
            read();
        }

        ArrowArray child(int i) {
            return new ArrowArray(children.getPointer((long) i * Native.POINTER_SIZE));
        }

        Pointer buffer(int i) {
            return buffers.getPointer((long) i * Native.POINTER_SIZE);
        }

        /** The consumer's duty: release exactly once (the callback marks it released). */
        void release() {
            write();
            release.invoke(getPointer());
            read();
            if (release != null) throw new AssertionError("release did not mark the array released");
        }
    }

    /** struct ArrowSchema. */
    @Structure.FieldOrder({"format", "name", "metadata", "flags", "n_children", "children", "dictionary", "release",
        "private_data"})
    public static class ArrowSchema extends Structure {
        public String format, name;
        public Pointer metadata;
        public long flags, n_children;
        public Pointer children, dictionary;
        public ReleaseArray release;
        public Pointer private_data;

        public ArrowSchema() {}

        public ArrowSchema(Pointer p) {
            super(p);
            read();
        }

        ArrowSchema child(int i) {
            return new ArrowSchema(children.getPointer((long) i * Native.POINTER_SIZE));
        }

        int column(String name) {
            for (int i = 0; i < n_children; i++) if (child(i).name.equals(name)) return i;
            throw new AssertionError("no column " + name);
        }

        void release() {
            write();
            release.invoke(getPointer());
            read();
            if (release != null) throw new AssertionError("release did not mark the schema released");
        }
    }

    public interface Userops extends Library {
        Userops LIB = Native.load("userops", Userops.class);

        Pointer userops_engine_new();
        void userops_engine_free(Pointer engine);
        int userops_engine_ingest_json(Pointer engine, String eventJson, PointerByReference receipt);
        int userops_engine_call(Pointer engine, String method, String argsJson, PointerByReference result);
        String userops_last_error_message();
        int userops_last_error_code();
        void userops_string_free(Pointer s);

        int userops_identity_link(Pointer engine, String key, String time, String platform, String program,
            String[] kinds, String[] values, long n, LinkResult out);
        int userops_identity_resolve(Pointer engine, String kind, String value, LongByReference oneid);
        int userops_identity_explain(Pointer engine, String kindA, String valueA, String kindB, String valueB,
            PointerByReference json);
        int userops_identity_merge(Pointer engine, User a, User b, String actor, String reason, String time,
            LongByReference survivor, PointerByReference reportJson);
        int userops_identity_split(Pointer engine, String[] evidence, long n, String actor, String reason,
            String time, PointerByReference reportJson);
        int userops_loyalty_earn(Pointer engine, User user, String program, long points, String key, String time,
            int pending, Posting out);
        int userops_loyalty_spend(Pointer engine, User user, String program, long points, String key, String time,
            Posting out);
        int userops_loyalty_balance(Pointer engine, User user, String program, LongByReference balance);
        int userops_loyalty_statement(Pointer engine, User user, String program, ArrowArray array, ArrowSchema schema);

        int userops_audience_eval(Pointer engine, String expression, PointerByReference out);
        long userops_audience_len(Pointer audience);
        int userops_audience_to_arrow(Pointer audience, ArrowArray array, ArrowSchema schema);
        void userops_audience_free(Pointer audience);

        int userops_quote_evaluate(Pointer engine, String cartJson, User user, PointerByReference out);
        String userops_quote_subtotal(Pointer quote);
        String userops_quote_discount(Pointer quote);
        String userops_quote_total(Pointer quote);
        String userops_quote_applied_json(Pointer quote);
        String userops_quote_not_applied_json(Pointer quote);
        int userops_quote_commit(Pointer engine, Pointer quote, String key, PointerByReference receiptJson);
        void userops_quote_free(Pointer quote);
    }

    static final int UOPS_OK = 0, UOPS_INVALID_ARGUMENT = 1, UOPS_INVALID_EVENT = 3, UOPS_UNKNOWN_METHOD = 4,
        UOPS_NOT_FOUND = 6, UOPS_NULL_POINTER = 20, UOPS_INVALID_HANDLE = 22, UOPS_INSUFFICIENT_POINTS = 50;

    static String take(PointerByReference ref) {
        Pointer p = ref.getValue();
        String s = p.getString(0, "UTF-8");
        Userops.LIB.userops_string_free(p);
        return s;
    }

    static void check(boolean ok, String what) {
        if (!ok) throw new AssertionError(what + " (last error: " + Userops.LIB.userops_last_error_message() + ")");
    }

    static void call(Pointer e, String method, String args) {
        PointerByReference out = new PointerByReference();
        check(Userops.LIB.userops_engine_call(e, method, args, out) == UOPS_OK, method);
        take(out);
    }

    static void jsonDoor(Userops u) {
        Pointer e = u.userops_engine_new();
        String identify = "{\"kind\": \"identify\", \"key\": \"jd-7781\", \"time\": \"2026-01-05T10:00:00+08:00\","
            + " \"source\": {\"platform\": \"jd\", \"program\": \"brand-a\"},"
            + " \"ids\": [{\"kind\": \"phone\", \"value\": \"13800138000\"}, {\"kind\": \"device_id\", \"value\": \"a9f3\"}]}";
        PointerByReference out = new PointerByReference();
        check(u.userops_engine_ingest_json(e, identify, out) == UOPS_OK, "ingest");
        String receipt = take(out);
        check(receipt.contains("\"oneid\":1") && receipt.contains("\"duplicate\":false"), receipt);
        check(u.userops_engine_ingest_json(e, identify, out) == UOPS_OK, "replay");
        check(take(out).contains("\"duplicate\":true"), "replay is duplicate");
        check(u.userops_engine_call(e, "resolve", "{\"user\": {\"kind\": \"phone\", \"value\": \"8613800138000\"}}", out) == UOPS_OK, "resolve");
        check(take(out).equals("{\"oneid\":1}"), "resolved to 1");
        check(u.userops_engine_call(e, "teleport", "{}", out) == UOPS_UNKNOWN_METHOD, "unknown method");
        check(u.userops_last_error_message().contains("teleport"), "message names the method");
        check(u.userops_engine_ingest_json(e, "{broken", out) == UOPS_INVALID_EVENT, "bad json");
        check(u.userops_engine_ingest_json(e, null, out) == UOPS_NULL_POINTER, "null event");
        check(u.userops_engine_call(e, "stats", "{}", out) == UOPS_OK, "stats");
        check(take(out).contains("\"events\":1,"), "one event");
        u.userops_engine_free(e);
    }

    static void typedScenario(Userops u) {
        Pointer e = u.userops_engine_new();
        PointerByReference out = new PointerByReference();

        // ingest: two records joined by a shared device, then a third person
        LinkResult link = new LinkResult();
        check(u.userops_identity_link(e, "jd-1", "2026-01-05T10:00:00+08:00", "jd", "brand-a",
            new String[] {"phone", "device_id"}, new String[] {"13800138000", "a9f3"}, 2, link) == UOPS_OK, "link 1");
        check(link.oneid == 1 && link.duplicate == 0, "first person");
        check(u.userops_identity_link(e, "app-1", "2026-01-06T09:00:00+08:00", "app", "brand-a",
            new String[] {"member_no", "device_id"}, new String[] {"M1", "a9f3"}, 2, link) == UOPS_OK, "link 2");
        check(link.oneid == 1, "joined by the device");
        check(u.userops_identity_link(e, "pos-1", "2026-01-07T09:00:00+08:00", "pos", "s1",
            new String[] {"member_no"}, new String[] {"M2"}, 1, link) == UOPS_OK, "link 3");
        check(link.oneid == 2, "second person");
        check(u.userops_identity_link(e, "bad", "2026-01-07T09:00:00+08:00", "pos", "s1",
            new String[] {"email"}, new String[] {"nope"}, 1, null) == UOPS_INVALID_EVENT, "bad identifier");

        // merge
        User m1 = User.id("member_no", "M1"), m2 = User.id("member_no", "M2");
        LongByReference survivor = new LongByReference();
        check(u.userops_identity_merge(e, m1, m2, "ops", "same customer", null, survivor, out) == UOPS_OK, "merge");
        check(survivor.getValue() == 1 && take(out).contains("\"absorbed\":[2]"), "merge report");
        LongByReference oneid = new LongByReference();
        check(u.userops_identity_resolve(e, "member_no", "M2", oneid) == UOPS_OK && oneid.getValue() == 1, "M2 is 1");
        check(u.userops_identity_resolve(e, "member_no", "M404", oneid) == UOPS_OK && oneid.getValue() == 0, "unknown is 0");
        check(u.userops_identity_explain(e, "phone", "13800138000", "member_no", "M2", out) == UOPS_OK, "explain");
        check(take(out).contains("\"joined\":true"), "joined");

        // earn / spend
        call(e, "create_program", "{\"program\": {\"id\": \"brand-a\"}}");
        Posting p = new Posting();
        check(u.userops_loyalty_earn(e, m1, "brand-a", 100, "o1", "2026-01-10T10:00:00+08:00", 0, p) == UOPS_OK, "earn");
        check(p.balance == 100 && p.points == 100, "earned 100");
        check(u.userops_loyalty_spend(e, User.oneid(1), "brand-a", 30, "s1", null, p) == UOPS_OK, "spend");
        check(p.balance == 70, "balance 70");
        check(u.userops_loyalty_spend(e, m2, "brand-a", 71, "s2", null, p) == UOPS_INSUFFICIENT_POINTS, "overspend");
        LongByReference balance = new LongByReference();
        check(u.userops_loyalty_balance(e, m2, "brand-a", balance) == UOPS_OK && balance.getValue() == 70, "balance");
        ArrowArray arr = new ArrowArray();
        ArrowSchema sch = new ArrowSchema();
        check(u.userops_loyalty_statement(e, m1, "brand-a", arr, sch) == UOPS_OK, "statement");
        check(arr.length == 2 && "+s".equals(sch.format) && sch.n_children == 11, "statement shape");
        int amount = sch.column("amount");
        check("l".equals(sch.child(amount).format), "amount is int64");
        ArrowArray amounts = arr.child(amount);
        check(amounts.buffer(1).getLong(8 * (amounts.offset + 1)) == -30, "spend row is -30");
        arr.release();
        sch.release();
        check(u.userops_loyalty_statement(e, m1, "nope", arr, sch) == UOPS_NOT_FOUND, "unknown program");
        check(arr.release == null && sch.release == null, "nothing to release after an error");

        // audience, as a handle and as Arrow
        call(e, "set_tags", "{\"kind\": \"member_no\", \"users\": [\"M1\", \"M9\"], \"tags\": ["
            + "{\"name\": \"age\", \"type\": \"number\", \"values\": [45, 52]}]}");
        PointerByReference audRef = new PointerByReference();
        check(u.userops_audience_eval(e, "age > 40", audRef) == UOPS_OK, "audience");
        Pointer aud = audRef.getValue();
        check(u.userops_audience_len(aud) == 2, "two members");
        check(u.userops_audience_to_arrow(aud, arr, sch) == UOPS_OK, "audience to arrow");
        u.userops_audience_free(aud);
        ArrowArray ids = arr.child(0);
        check("L".equals(sch.child(0).format) && "oneid".equals(sch.child(0).name), "oneid column");
        check(ids.buffer(1).getLong(0) == 1 && ids.buffer(1).getLong(8) == 3, "members 1 and 3");
        arr.release();
        sch.release();
        check(u.userops_audience_to_arrow(aud, arr, sch) == UOPS_INVALID_HANDLE, "freed audience");

        // quote
        call(e, "add_promotion", "{\"promotion\": {\"id\": \"p300\", \"action\":"
            + " {\"type\": \"threshold_discount\", \"threshold\": \"300\", \"off\": \"50\"}}}");
        PointerByReference qRef = new PointerByReference();
        String cart = "{\"time\": \"2026-03-01T10:00:00+08:00\","
            + " \"lines\": [{\"sku\": \"a\", \"category\": \"x\", \"price\": \"120.00\", \"qty\": 3}]}";
        check(u.userops_quote_evaluate(e, cart, m1, qRef) == UOPS_OK, "quote");
        Pointer q = qRef.getValue();
        check("360.00".equals(u.userops_quote_subtotal(q)), "subtotal");
        check("50.00".equals(u.userops_quote_discount(q)), "discount");
        check("310.00".equals(u.userops_quote_total(q)), "total");
        check(u.userops_quote_applied_json(q).contains("\"p300\""), "applied");
        check("[]".equals(u.userops_quote_not_applied_json(q)), "nothing else");
        check(u.userops_quote_commit(e, q, "order-1", out) == UOPS_OK, "commit");
        check(take(out).contains("\"committed\""), "committed");
        u.userops_quote_free(q);
        u.userops_quote_free(q);
        check(u.userops_last_error_code() == UOPS_INVALID_HANDLE, "double free detected");
        check(u.userops_quote_evaluate(e, "{\"lines\": []}", null, qRef) == UOPS_INVALID_ARGUMENT, "bad cart");
        check(qRef.getValue() == null, "no quote on error");

        // split: the manual merge undone, dated
        String[] evidence = {"manual:1"};
        check(u.userops_identity_split(e, evidence, 1, "ops", "two people", "soon", out) == UOPS_INVALID_ARGUMENT,
            "bad time");
        check(u.userops_identity_split(e, evidence, 1, "ops", "two people", "2026-03-01T10:00:00+08:00", out) == UOPS_OK,
            "split");
        check(take(out).contains("\"not_split_back\""), "split report");
        check(u.userops_identity_resolve(e, "member_no", "M2", oneid) == UOPS_OK && oneid.getValue() == 2, "M2 is 2 again");
        u.userops_engine_free(e);
    }

    public static void main(String[] args) {
        Userops u = Userops.LIB;
        jsonDoor(u);
        typedScenario(u);
        System.out.println("java: all checks passed");
    }
}
