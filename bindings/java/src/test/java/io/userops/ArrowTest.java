package io.userops;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.sun.jna.Pointer;
import com.sun.jna.ptr.PointerByReference;
import org.junit.jupiter.api.Test;

/** The Arrow reader: a column of another type is refused, not misread; close releases once. */
class ArrowTest {
    @Test
    void columnsAreCheckedAndBatchesReleased() {
        NativeLib lib = NativeLib.LIB;
        Pointer e = lib.userops_engine_new();
        try {
            PointerByReference out = new PointerByReference();
            UserOpsException.check(lib.userops_engine_call(e, "create_program", "{\"program\": {\"id\": \"b\"}}", out));
            lib.userops_string_free(out.getValue());
            NativeLib.CUser u = NativeLib.CUser.of(User.id("member_no", "M1"));
            UserOpsException.check(lib.userops_loyalty_earn(e, u, "b", 5, "k1", null, 0, null));
            Arrow.Batch b = new Arrow.Batch();
            try {
                UserOpsException.check(lib.userops_loyalty_statement(e, u, "b", b.array, b.schema));
                assertEquals(1, b.rows());
                assertEquals(5, b.column("amount", "l").getLong(0));
                InternalException wrongType = assertThrows(InternalException.class, () -> b.column("amount", "u"));
                assertEquals("column amount is l, not u", wrongType.getMessage());
                assertThrows(InternalException.class, () -> b.column("nope", "u"));
            } finally {
                b.close();
            }
            assertNull(b.array.release);
            assertNull(b.schema.release);
            b.close(); // a second close releases nothing
        } finally {
            lib.userops_engine_free(e);
        }
    }
}
