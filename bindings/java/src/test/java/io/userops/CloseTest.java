package io.userops;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.lang.reflect.ParameterizedType;
import java.lang.reflect.Type;
import java.math.BigDecimal;
import java.nio.file.Path;
import java.time.Instant;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Close twice is harmless; any use after close is a ClosedException, never a crash. */
class CloseTest {
    @Test
    void closeTwice() {
        Engine e = Engine.inMemory();
        e.close();
        e.close();
        Quote q;
        try (Engine engine = Engine.inMemory()) {
            q = engine.quote(new Cart(Instant.parse("2026-03-01T02:00:00Z")).line("a", "x", BigDecimal.TEN, 1), null);
        }
        q.close();
        q.close();
    }

    /** A value of each parameter type the public methods take. */
    private static Object sample(Type generic, Quote quote) {
        Class<?> type = generic instanceof ParameterizedType ? (Class<?>) ((ParameterizedType) generic).getRawType()
            : (Class<?>) generic;
        if (type == String.class) {
            return "x";
        } else if (type == long.class) {
            return 1L;
        } else if (type == int.class) {
            return 0;
        } else if (type == boolean.class) {
            return false;
        } else if (type == Instant.class) {
            return Instant.parse("2026-03-01T02:00:00Z");
        } else if (type == User.class) {
            return User.oneid(1);
        } else if (type == List.class) {
            Type item = ((ParameterizedType) generic).getActualTypeArguments()[0];
            if (item == Identifier.class) {
                return Collections.singletonList(Identifier.of("member_no", "M1"));
            }
            assertEquals(String.class, item, "a List of what? extend CloseTest.sample");
            return Collections.singletonList("x");
        } else if (type == Identifier[].class) {
            return new Identifier[] {Identifier.of("member_no", "M1")};
        } else if (type == Cart.class) {
            return new Cart(Instant.parse("2026-03-01T02:00:00Z")).line("a", "x", BigDecimal.TEN, 1);
        } else if (type == Quote.class) {
            return quote;
        }
        throw new AssertionError("no sample for " + type + ": extend CloseTest.sample");
    }

    /** Every public instance method of the engine, called after close, by reflection: new ones too. */
    @Test
    void everyEngineMethodAfterCloseThrowsClosed() throws Exception {
        Engine live = Engine.inMemory();
        Quote quote = live.quote(new Cart(Instant.parse("2026-03-01T02:00:00Z")).line("a", "x", BigDecimal.TEN, 1), null);
        Engine e = Engine.inMemory();
        e.close();
        int checked = 0;
        for (Method m : Engine.class.getMethods()) {
            if (m.getDeclaringClass() != Engine.class || Modifier.isStatic(m.getModifiers()) || m.getName().equals("close")) {
                continue;
            }
            Object[] args = Arrays.stream(m.getGenericParameterTypes()).map(t -> sample(t, quote)).toArray();
            try {
                m.invoke(e, args);
                fail(m + " ran on a closed engine");
            } catch (InvocationTargetException x) {
                Throwable cause = x.getCause();
                assertTrue(cause instanceof ClosedException, m + " threw " + cause);
                ClosedException closed = (ClosedException) cause;
                assertEquals("invalid_handle", closed.code());
                assertTrue(closed.getMessage().contains("engine is closed"), closed.getMessage());
            }
            checked++;
        }
        assertTrue(checked >= 25, "checked " + checked + " methods");
        quote.close();
        live.close();
    }

    @Test
    void quoteAfterClose() {
        try (Engine e = Engine.inMemory()) {
            Quote q = e.quote(new Cart(Instant.parse("2026-03-01T02:00:00Z")).line("a", "x", BigDecimal.TEN, 1), null);
            q.close();
            assertThrows(ClosedException.class, q::total);
            assertThrows(ClosedException.class, q::subtotal);
            assertThrows(ClosedException.class, q::discount);
            assertThrows(ClosedException.class, q::appliedJson);
            assertThrows(ClosedException.class, q::notAppliedJson);
            assertThrows(ClosedException.class, q::json);
            ClosedException c = assertThrows(ClosedException.class, () -> e.commit(q, "order-1"));
            assertTrue(c.getMessage().contains("quote is closed"));
            assertNotNull(e.call("stats")); // the engine is fine
        }
    }

    @Test
    void durableEngineClosesItsFile(@org.junit.jupiter.api.io.TempDir Path dir) {
        Path db = dir.resolve("a.db");
        Engine first = Engine.open(db);
        first.link("k1", Instant.parse("2026-01-05T02:00:00Z"), "app", "b", Identifier.of("member_no", "M1"));
        first.close();
        first.close();
        try (Engine again = Engine.open(db)) { // reopened after close: the first let go of it
            assertEquals(1, again.resolve("member_no", "M1").getAsLong());
        }
    }
}
