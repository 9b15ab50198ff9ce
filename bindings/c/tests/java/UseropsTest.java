// The C ABI from Java through JNA, run as a single-file program: java -cp jna.jar UseropsTest.java
import com.sun.jna.Library;
import com.sun.jna.Native;
import com.sun.jna.Pointer;
import com.sun.jna.ptr.PointerByReference;

public class UseropsTest {
    public interface Userops extends Library {
        Userops LIB = Native.load("userops", Userops.class);

        Pointer userops_engine_new();
        void userops_engine_free(Pointer engine);
        int userops_engine_ingest_json(Pointer engine, String eventJson, PointerByReference receipt);
        int userops_engine_call(Pointer engine, String method, String argsJson, PointerByReference result);
        String userops_last_error_message();
        void userops_string_free(Pointer s);
    }

    static final int UOPS_OK = 0, UOPS_INVALID_EVENT = 3, UOPS_UNKNOWN_METHOD = 4, UOPS_NULL_POINTER = 20;

    static String take(PointerByReference ref) {
        Pointer p = ref.getValue();
        String s = p.getString(0, "UTF-8");
        Userops.LIB.userops_string_free(p);
        return s;
    }

    static void check(boolean ok, String what) {
        if (!ok) throw new AssertionError(what);
    }

    public static void main(String[] args) {
        Userops u = Userops.LIB;
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
        System.out.println("java: all checks passed");
    }
}
