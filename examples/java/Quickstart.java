// A small Java program calling userops through JNA (Debian: libjna-java).
// Run: java -Djna.library.path=target/release -cp /usr/share/java/jna.jar examples/java/Quickstart.java
import com.sun.jna.Library;
import com.sun.jna.Native;
import com.sun.jna.Pointer;
import com.sun.jna.ptr.PointerByReference;

public class Quickstart {
    public interface Userops extends Library {
        Userops LIB = Native.load("userops", Userops.class);
        Pointer userops_engine_new();
        void userops_engine_free(Pointer engine);
        int userops_engine_ingest_json(Pointer engine, String eventJson, PointerByReference receipt);
        int userops_engine_call(Pointer engine, String method, String argsJson, PointerByReference result);
        String userops_last_error_message();
        void userops_string_free(Pointer s);
    }

    static String call(Pointer engine, String method, String args) {
        PointerByReference out = new PointerByReference();
        int status = Userops.LIB.userops_engine_call(engine, method, args, out);
        if (status != 0) throw new IllegalStateException(status + ": " + Userops.LIB.userops_last_error_message());
        Pointer p = out.getValue();
        try {
            return p.getString(0, "UTF-8");
        } finally {
            Userops.LIB.userops_string_free(p);
        }
    }

    public static void main(String[] args) {
        Pointer engine = Userops.LIB.userops_engine_new();
        try {
            String event = "{\"kind\": \"order\", \"key\": \"o-1\", \"time\": \"2026-03-08T12:00:00+08:00\","
                + " \"source\": {\"platform\": \"app\", \"program\": \"brand-a\"},"
                + " \"user\": {\"kind\": \"member_no\", \"value\": \"M7\"}, \"order_id\": \"o-1\", \"amount\": \"199.00\","
                + " \"lines\": [{\"sku\": \"s1\", \"category\": \"beauty\", \"price\": \"199.00\", \"qty\": 1}]}";
            System.out.println(call(engine, "ingest", "{\"event\": " + event + "}"));
            System.out.println(call(engine, "stats", "{}"));
        } finally {
            Userops.LIB.userops_engine_free(engine);
        }
    }
}
