package io.userops;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/** Eight threads on one engine, as the header promises; close while they run. */
class ThreadsTest {
    static final int THREADS = 8;
    static final int PER_THREAD = 40;

    @Test
    void eightThreadsShareOneEngine() throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(THREADS);
        try (Engine e = Engine.inMemory()) {
            e.call("create_program", "{\"program\": {\"id\": \"b\"}}");
            CountDownLatch start = new CountDownLatch(1);
            List<Future<Integer>> results = new ArrayList<>();
            for (int t = 0; t < THREADS; t++) {
                final int thread = t;
                results.add(pool.submit((Callable<Integer>) () -> {
                    start.await();
                    int refused = 0;
                    for (int i = 0; i < PER_THREAD; i++) {
                        String member = "M" + thread + "-" + i;
                        User u = User.id("member_no", member);
                        e.link("l" + member, Instant.parse("2026-01-05T02:00:00Z"), "app", "b",
                            Identifier.of("member_no", member));
                        assertEquals(5, e.earn(u, "b", 5, "k" + member).balance());
                        assertEquals(3, e.spend(u, "b", 2, "s" + member).balance());
                        try {
                            e.spend(u, "b", 99, "x" + member);
                        } catch (InsufficientPointsException x) {
                            // the last error is per thread: this one, not a neighbour's
                            assertTrue(x.getMessage().contains("99") || x.getMessage().contains("3"), x.getMessage());
                            refused++;
                        }
                        assertTrue(e.resolve("member_no", member).isPresent());
                        assertEquals(3, e.balance(u, "b"));
                    }
                    return refused;
                }));
            }
            start.countDown();
            for (Future<Integer> r : results) {
                assertEquals(PER_THREAD, (int) r.get(120, TimeUnit.SECONDS));
            }
            String stats = e.call("stats");
            assertTrue(stats.contains("\"persons\":" + THREADS * PER_THREAD), stats);
        } finally {
            pool.shutdownNow();
        }
    }

    /** Close from one thread while others call: they get ClosedException, nothing else. */
    @Test
    void closeWhileOtherThreadsCall() throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(THREADS);
        try {
            Engine e = Engine.inMemory();
            AtomicInteger ok = new AtomicInteger();
            AtomicInteger closed = new AtomicInteger();
            CountDownLatch running = new CountDownLatch(THREADS);
            List<Future<?>> futures = new ArrayList<>();
            for (int t = 0; t < THREADS; t++) {
                final int thread = t;
                futures.add(pool.submit(() -> {
                    running.countDown();
                    for (int i = 0; ; i++) { // until the engine is closed under it
                        try {
                            e.link("k" + thread + "-" + i, Instant.parse("2026-01-05T02:00:00Z"), "app", "b",
                                Identifier.of("member_no", "M" + thread + "-" + i));
                            ok.incrementAndGet();
                        } catch (ClosedException x) {
                            closed.incrementAndGet();
                            return;
                        }
                    }
                }));
            }
            running.await();
            Thread.sleep(50);
            e.close();
            for (Future<?> f : futures) {
                f.get(120, TimeUnit.SECONDS); // any other exception fails here
            }
            assertTrue(ok.get() > 0);
            assertEquals(THREADS, closed.get());
        } finally {
            pool.shutdownNow();
        }
    }
}
