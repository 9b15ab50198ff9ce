package io.userops;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/** Every C status maps to its own exception class and stable code. */
class ErrorsTest {
    /**
     * The statuses come from the header (-Duserops.header=.../userops.h, generated from the C
     * crate), so a status added there without a Java class fails here.
     */
    @Test
    void everyStatusTheHeaderDeclaresMapsToASubclass() throws IOException {
        String path = System.getProperty("userops.header");
        assertNotNull(path, "run with -Duserops.header=bindings/c/include/userops.h");
        String header = new String(Files.readAllBytes(Paths.get(path)), StandardCharsets.UTF_8);
        Matcher m = Pattern.compile("\\bUOPS_([A-Z0-9_]+) = (\\d+),").matcher(header);
        int seen = 0;
        while (m.find()) {
            String constant = m.group(1);
            int status = Integer.parseInt(m.group(2));
            seen++;
            if (status == 0) {
                assertEquals("ok", UserOpsException.codeOf(0));
                continue;
            }
            UserOpsException e = UserOpsException.of(status, "message", "field");
            assertNotEquals(UserOpsException.class, e.getClass(), "UOPS_" + constant + " has no exception class");
            assertNotEquals(LedgerException.class, e.getClass(), "UOPS_" + constant + " maps to the abstract family");
            assertEquals(status, e.status());
            assertEquals(constant.toLowerCase(Locale.ROOT), e.code(), "UOPS_" + constant);
            assertEquals("message", e.getMessage());
            assertEquals("field", e.field());
            assertTrue(e instanceof RuntimeException);
        }
        assertTrue(seen >= 27, "read " + seen + " statuses from " + path);
    }

    @Test
    void familiesMirrorPython() {
        // loyalty errors share LedgerException (Python: LedgerError)
        for (int status = 50; status <= 57; status++) {
            assertTrue(UserOpsException.of(status, "m", null) instanceof LedgerException, "status " + status);
        }
        assertTrue(UserOpsException.of(51, "m", null) instanceof LedgerDuplicateKeyException);
        assertTrue(UserOpsException.of(52, "m", null) instanceof UnknownAccountException);
        assertTrue(UserOpsException.of(53, "m", null) instanceof InvalidAmountException);
        assertEquals(InvalidArgumentException.class, UserOpsException.of(20, "m", null).getClass());
        assertEquals(InvalidArgumentException.class, UserOpsException.of(21, "m", null).getClass());
        assertEquals(ClosedException.class, UserOpsException.of(22, "m", null).getClass());
        assertEquals(InternalException.class, UserOpsException.of(99, "m", null).getClass());
        assertEquals(StorageException.class, UserOpsException.of(90, "m", null).getClass());
        assertEquals(CorruptStoreException.class, UserOpsException.of(91, "m", null).getClass());
        // a status from a newer library: still a UserOpsException, with a readable code
        UserOpsException future = UserOpsException.of(12345, "m", null);
        assertEquals(UserOpsException.class, future.getClass());
        assertEquals("status_12345", future.code());
    }
}
