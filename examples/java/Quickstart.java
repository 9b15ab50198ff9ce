// A small Java program calling userops through JNA (Debian: libjna-java): typed calls for
// identity, loyalty and quotes; the JSON door for configuration.
// Run: java -Djna.library.path=target/release -cp /usr/share/java/jna.jar examples/java/Quickstart.java
import com.sun.jna.Library;
import com.sun.jna.Native;
import com.sun.jna.Pointer;
import com.sun.jna.Structure;
import com.sun.jna.ptr.LongByReference;
import com.sun.jna.ptr.PointerByReference;

public class Quickstart {
    /** struct userops_user: an identifier, or a OneID when kind is null. */
    @Structure.FieldOrder({"kind", "value", "oneid"})
    public static class User extends Structure {
        public String kind;
        public String value;
        public long oneid;

        User(String kind, String value) {
            this.kind = kind;
            this.value = value;
        }
    }

    /** struct userops_posting. */
    @Structure.FieldOrder({"points", "balance", "transfer", "pending", "duplicate"})
    public static class Posting extends Structure {
        public long points, balance, transfer;
        public int pending, duplicate;
    }

    public interface Userops extends Library {
        Userops LIB = Native.load("userops", Userops.class);
        Pointer userops_engine_new();
        void userops_engine_free(Pointer engine);
        int userops_engine_call(Pointer engine, String method, String argsJson, PointerByReference result);
        String userops_last_error_message();
        void userops_string_free(Pointer s);
        int userops_identity_link(Pointer engine, String key, String time, String platform, String program,
            String[] kinds, String[] values, long n, Pointer out);
        int userops_identity_resolve(Pointer engine, String kind, String value, LongByReference oneid);
        int userops_loyalty_earn(Pointer engine, User user, String program, long points, String key, String time,
            int pending, Posting out);
        int userops_loyalty_spend(Pointer engine, User user, String program, long points, String key, String time,
            Posting out);
        int userops_quote_evaluate(Pointer engine, String cartJson, User user, PointerByReference out);
        String userops_quote_total(Pointer quote);
        String userops_quote_discount(Pointer quote);
        int userops_quote_commit(Pointer engine, Pointer quote, String key, PointerByReference receiptJson);
        void userops_quote_free(Pointer quote);
    }

    static final Userops U = Userops.LIB;

    static void check(int status) {
        if (status != 0) throw new IllegalStateException(status + ": " + U.userops_last_error_message());
    }

    static String take(PointerByReference out) {
        Pointer p = out.getValue();
        try {
            return p.getString(0, "UTF-8");
        } finally {
            U.userops_string_free(p);
        }
    }

    public static void main(String[] args) {
        Pointer engine = U.userops_engine_new();
        try {
            check(U.userops_identity_link(engine, "app-1", "2026-03-08T12:00:00+08:00", "app", "brand-a",
                new String[] {"member_no", "phone"}, new String[] {"M7", "13900139000"}, 2, null));
            LongByReference oneid = new LongByReference();
            check(U.userops_identity_resolve(engine, "phone", "+86 139 0013 9000", oneid));
            System.out.println("phone resolves to OneID " + oneid.getValue());

            PointerByReference out = new PointerByReference();
            check(U.userops_engine_call(engine, "create_program", "{\"program\": {\"id\": \"brand-a\"}}", out));
            take(out);
            User member = new User("member_no", "M7");
            Posting p = new Posting();
            check(U.userops_loyalty_earn(engine, member, "brand-a", 199, "o-1", null, 0, p));
            check(U.userops_loyalty_spend(engine, member, "brand-a", 99, "r-1", null, p));
            System.out.println("balance " + p.balance);

            check(U.userops_engine_call(engine, "add_promotion", "{\"promotion\": {\"id\": \"p10\", \"action\":"
                + " {\"type\": \"percent_off\", \"percent\": \"10\"}}}", out));
            take(out);
            PointerByReference q = new PointerByReference();
            check(U.userops_quote_evaluate(engine, "{\"time\": \"2026-03-08T12:00:00+08:00\", \"lines\":"
                + " [{\"sku\": \"s1\", \"category\": \"beauty\", \"price\": \"199.00\", \"qty\": 1}]}", member, q));
            try {
                System.out.println("quote: discount " + U.userops_quote_discount(q.getValue())
                    + ", total " + U.userops_quote_total(q.getValue()));
                check(U.userops_quote_commit(engine, q.getValue(), "o-2", out));
                System.out.println("commit: " + take(out));
            } finally {
                U.userops_quote_free(q.getValue());
            }
        } finally {
            U.userops_engine_free(engine);
        }
    }
}
