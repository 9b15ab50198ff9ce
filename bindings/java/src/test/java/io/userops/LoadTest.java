package io.userops;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.math.BigDecimal;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * Eight threads calling quote and ingest on one engine for a bounded time: every answer is
 * checked as it comes, and afterwards the balances, the event count and the promotion's usage
 * add up to what the threads did.
 */
class LoadTest {
    static final int THREADS = 8;
    static final long MILLIS = 2_500;
    static final Instant T = Instant.parse("2026-03-01T02:00:00Z");

    /** What one thread did. */
    static final class Done {
        final long[] earned; // per member of this thread
        long orders;
        long quotes;
        long commits;

        Done(int members) {
            earned = new long[members];
        }
    }

    static String order(String key, String member, long amount) {
        return "{\"kind\": \"order\", \"key\": \"" + key + "\", \"time\": \"2026-03-01T02:00:00Z\","
            + " \"source\": {\"platform\": \"app\", \"program\": \"b\"},"
            + " \"user\": {\"kind\": \"member_no\", \"value\": \"" + member + "\"},"
            + " \"order_id\": \"" + key + "\", \"amount\": \"" + amount + "\","
            + " \"lines\": [{\"sku\": \"s\", \"category\": \"x\", \"price\": \"" + amount + "\", \"qty\": 1}]}";
    }

    static Done work(Engine e, int thread, int members) {
        Done d = new Done(members);
        long end = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(MILLIS);
        for (int i = 0; System.nanoTime() < end; i++) {
            int m = i % members;
            String member = "M" + thread + "-" + m;
            User u = User.id("member_no", member);
            long amount = 100 + (i % 7) * 50; // 100..400: below and above the 300 threshold
            String receipt = e.ingest(order("o" + thread + "-" + i, member, amount));
            assertTrue(receipt.contains("\"duplicate\":false"), receipt);
            d.orders++;
            d.earned[m] += amount; // one point per unit, posted at once
            // Read your writes: the balance this thread just earned is there.
            assertEquals(d.earned[m], e.balance(u, "b"), member);
            BigDecimal price = BigDecimal.valueOf(amount);
            try (Quote q = e.quote(new Cart(T).line("s", "x", price, 1).channel("app"), u)) {
                d.quotes++;
                BigDecimal off = amount >= 300 ? new BigDecimal("50") : BigDecimal.ZERO;
                assertEquals(0, price.compareTo(q.subtotal()), q.json());
                assertEquals(0, off.compareTo(q.discount()), q.json());
                assertEquals(0, price.subtract(off).compareTo(q.total()), q.json());
                if (i % 5 == 0) {
                    String c = e.commit(q, "c" + thread + "-" + i);
                    assertTrue(c.contains("\"state\":\"committed\"") && c.contains("\"duplicate\":false"), c);
                    if (amount >= 300) { // the promotion's usage counts orders it applied to
                        d.commits++;
                    }
                }
            }
        }
        // A refused call still answers with its own error on a busy engine.
        assertThrows(InvalidArgumentException.class, () -> e.quote("{not json", null));
        return d;
    }

    static void load(Engine e) throws Exception {
        e.call("create_program", "{\"program\": {\"id\": \"b\", \"earn\": {\"points_per_unit\": \"1\"}}}");
        e.call("add_promotion", "{\"promotion\": {\"id\": \"p300\", \"action\": {\"type\": \"threshold_discount\","
            + " \"threshold\": \"300\", \"off\": \"50\"}}}");
        int members = 5;
        ExecutorService pool = Executors.newFixedThreadPool(THREADS);
        try {
            CountDownLatch start = new CountDownLatch(1);
            List<Future<Done>> futures = new ArrayList<>();
            for (int t = 0; t < THREADS; t++) {
                final int thread = t;
                futures.add(pool.submit((Callable<Done>) () -> {
                    start.await();
                    return work(e, thread, members);
                }));
            }
            start.countDown();
            long orders = 0;
            long commits = 0;
            for (int t = 0; t < THREADS; t++) {
                Done d = futures.get(t).get(120, TimeUnit.SECONDS);
                assertTrue(d.orders > 0 && d.quotes == d.orders, d.orders + " orders, " + d.quotes + " quotes");
                orders += d.orders;
                commits += d.commits;
                for (int m = 0; m < members; m++) {
                    assertEquals(d.earned[m], e.balance(User.id("member_no", "M" + t + "-" + m), "b"));
                }
            }
            String stats = e.call("stats");
            assertTrue(stats.contains("\"events\":" + orders), stats);
            assertTrue(stats.contains("\"persons\":" + THREADS * members), stats);
            String usage = e.call("promotion_usage", "{\"id\": \"p300\"}");
            assertTrue(usage.contains("\"orders\":" + commits + ",") && usage.contains("\"money\":\"" + commits * 50 + ".00\""),
                usage + " vs " + commits);
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void eightThreadsQuoteAndIngestInMemory() throws Exception {
        for (String concurrency : new String[] {"replicas", "lock"}) {
            try (Engine e = Engine.inMemory(concurrency)) {
                load(e);
            }
        }
    }

    @Test
    void eightThreadsQuoteAndIngestOnADurableEngineAndItReopensTheSame() throws Exception {
        Path dir = Files.createTempDirectory("userops-load");
        Path db = dir.resolve("pool.db");
        String stats;
        try (Engine e = Engine.open(db, "group", "replicas")) {
            load(e);
            stats = e.call("stats");
        }
        try (Engine back = Engine.open(db)) {
            assertEquals(stats, back.call("stats"));
        } finally {
            try (java.util.stream.Stream<Path> files = Files.list(dir)) {
                for (Path f : (Iterable<Path>) files::iterator) {
                    Files.delete(f);
                }
            }
            Files.delete(dir);
        }
    }

    @Test
    void unknownModesAreRefused() {
        assertThrows(InvalidArgumentException.class, () -> Engine.inMemory("fast"));
        assertThrows(InvalidArgumentException.class, () -> Engine.open(Path.of("x.db"), "sometimes", "lock"));
    }
}
