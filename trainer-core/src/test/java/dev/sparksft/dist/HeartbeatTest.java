package dev.sparksft.dist;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparksft.runtime.Torch;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Liveness independent of ddp_timeout: with collectives allowed to wait 10 minutes, a rank whose
 * heartbeat stops fails the others' waits within its silence timeout, naming it; a rank that is
 * slow but beating does not.
 */
class HeartbeatTest {
    static final Duration LONG = Duration.ofMinutes(10);       // ddp_timeout: never reached here
    static final Duration SILENCE = Duration.ofSeconds(2);     // rank_silence_timeout

    @BeforeAll
    static void load() {
        Torch.load(1);
    }

    interface RankBody {
        String run(int rank, Heartbeat heartbeat, Rendezvous.Address address) throws Exception;
    }

    /** Runs {@code body} on two ranks that share a rendezvous, each with its heartbeat; results by rank. */
    static List<String> onTwoRanks(RankBody body) throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(2);
        try (Rendezvous rv = Rendezvous.host("127.0.0.1", 2, LONG)) {
            List<Future<String>> futures = new ArrayList<>();
            for (int r = 0; r < 2; r++) {
                int rank = r;
                futures.add(pool.submit(() -> {
                    try (Heartbeat h = Heartbeat.start(rv.address(), rank, 2, SILENCE)) {
                        return body.run(rank, h, rv.address());
                    }
                }));
            }
            List<String> out = new ArrayList<>();
            for (Future<String> f : futures) {
                out.add(f.get());
            }
            return out;
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void aRankWhoseHeartbeatStopsFailsTheOthersCollectiveNamingIt() throws Exception {
        CountDownLatch done = new CountDownLatch(1);
        List<String> results = onTwoRanks((rank, heartbeat, address) -> {
            try (World w = World.join(rank, 2, address, "127.0.0.1", WorldTest.CPU, LONG, heartbeat)) {
                w.report(1, List.of("rank " + rank + " at step 1"));
                w.allReduceSum(1L);
                if (rank == 1) {
                    heartbeat.stopBeating();   // frozen: no beat, no second collective
                    done.await();
                    return "frozen";
                }
                long start = System.nanoTime();
                DistributedException e = assertThrows(DistributedException.class, () -> w.allReduceSum(2L));
                done.countDown();
                return String.format("%.1f|%s", (System.nanoTime() - start) / 1e9, e.getMessage());
            }
        });
        String[] r0 = results.get(0).split("\\|", 2);
        double seconds = Double.parseDouble(r0[0]);
        System.out.println("silent rank detected after " + r0[0] + " s: " + r0[1]);
        String m = r0[1];
        assertTrue(m.startsWith("rank 0: gave up the collective on a count: rank 1 has sent no heartbeat for"), m);
        assertTrue(m.contains("(rank_silence_timeout 2 s)") && m.contains("it last reported step 1")
                && m.contains("rank 1 at step 1"), m);
        // the silence timeout, one beat interval to see it and one wait slice: far from ddp_timeout's 10 minutes
        assertTrue(seconds >= SILENCE.toSeconds() - 1 && seconds < 15, "detected after " + seconds + " s");
    }

    @Test
    void aSlowRankThatBeatsIsWaitedFor() throws Exception {
        List<String> results = onTwoRanks((rank, heartbeat, address) -> {
            try (World w = World.join(rank, 2, address, "127.0.0.1", WorldTest.CPU, LONG, heartbeat)) {
                if (rank == 1) {
                    Thread.sleep(3 * SILENCE.toMillis());   // a long checkpoint save: the heartbeat thread beats on
                }
                return String.valueOf(w.allReduceSum(rank + 1L));
            }
        });
        assertEquals(List.of("3", "3"), results);
    }

    @Test
    void aRankThatNeverJoinsFailsTheJoinNamingItWithoutWaitingForTheTimeout() throws Exception {
        List<String> results = onTwoRanks((rank, heartbeat, address) -> {
            if (rank == 1) {
                heartbeat.stopBeating();   // hung while loading its model
                Thread.sleep(SILENCE.toMillis() * 3);
                return "hung";
            }
            DistributedException e = assertThrows(DistributedException.class,
                    () -> World.join(rank, 2, address, "127.0.0.1", WorldTest.CPU, LONG, heartbeat));
            return e.getMessage();
        });
        String m = results.get(0);
        // rank 1's heartbeat thread may get one beat out before stopBeating(): either wording names it silent
        assertTrue(m.startsWith("rank 0 could not join the Gloo group of 2 ranks at ")
                && (m.contains("rank 1 has not sent a heartbeat in") || m.contains("rank 1 has sent no heartbeat for"))
                && m.contains("no report yet"), m);
    }

    @Test
    void anInterruptedWaitEndsAtOnce() throws Exception {
        List<String> results = onTwoRanks((rank, heartbeat, address) -> {
            try (World w = World.join(rank, 2, address, "127.0.0.1", WorldTest.CPU, LONG, heartbeat)) {
                if (rank == 1) {
                    Thread.sleep(SILENCE.toMillis() / 2);   // alive, beating, and not coming to the collective yet
                    return "late";
                }
                Thread waiter = Thread.currentThread();
                Thread interrupter = new Thread(() -> {
                    try {
                        Thread.sleep(200);
                    } catch (InterruptedException e) {
                        return;
                    }
                    waiter.interrupt();   // what Spark does to a barrier stage's tasks when one of them fails
                });
                interrupter.start();
                DistributedException e = assertThrows(DistributedException.class, () -> w.allReduceSum(1L));
                Thread.interrupted();
                interrupter.join();
                return e.getMessage();
            }
        });
        assertTrue(results.get(0).contains("stopped waiting for the collective on a count: its thread was interrupted"),
                results.get(0));
    }
}
