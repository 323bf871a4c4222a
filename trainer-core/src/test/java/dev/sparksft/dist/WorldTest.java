package dev.sparksft.dist;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparksft.runtime.Torch;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.Function;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Gloo worlds of several ranks as threads of this JVM (as Spark's local[N] runs them). */
class WorldTest {
    static final Device CPU = new Device(torch.DeviceType.CPU);

    @BeforeAll
    static void load() {
        Torch.load(1);
    }

    /** Runs {@code body} on {@code size} ranks joined through one rendezvous; results by rank. */
    static <T> List<T> onRanks(int size, Duration timeout, Function<World, T> body) throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(size);
        try (Rendezvous rv = Rendezvous.host("127.0.0.1", size, timeout)) {
            List<Future<T>> futures = new ArrayList<>();
            for (int r = 0; r < size; r++) {
                int rank = r;
                futures.add(pool.submit(() -> {
                    try (World w = World.join(rank, size, rv.address(), "127.0.0.1", CPU, timeout)) {
                        return body.apply(w);
                    }
                }));
            }
            List<T> out = new ArrayList<>();
            for (Future<T> f : futures) {
                out.add(f.get());
            }
            return out;
        } finally {
            pool.shutdownNow();
        }
    }

    static float[] floats(Tensor t) {
        float[] out = new float[(int) t.numel()];
        new FloatPointer(t.contiguous().data_ptr()).capacity(out.length).get(out);
        return out;
    }

    @Test
    void sumsOverRanksAndBroadcastsRankZero() throws Exception {
        List<float[]> results = onRanks(3, Duration.ofSeconds(30), w -> {
            int r = w.rank();
            assertEquals(0 + 1 + 2, w.allReduceSum((long) r));
            assertEquals(0.5 + 1.5 + 2.5, w.allReduceSum(r + 0.5), 1e-12);
            // two tensors of different shapes packed into one bucket: (2,3) and (4,)
            Tensor a = Tensor.create(new float[] {r, r, r, r, r, r}, 2, 3);
            Tensor b = Tensor.create(new float[] {1, 2, 3, 4}, 4);
            w.allReduceSumInPlace(List.of(a, b));
            assertArrayEquals(new long[] {2, 3}, a.sizes().vec().get());
            Tensor p = Tensor.create(new float[] {r * 10f, 7f}, 2);
            w.broadcastFromMain(List.of(p));
            float[] out = new float[12];
            System.arraycopy(floats(a), 0, out, 0, 6);
            System.arraycopy(floats(b), 0, out, 6, 4);
            System.arraycopy(floats(p), 0, out, 10, 2);
            return out;
        });
        for (float[] r : results) {
            assertArrayEquals(new float[] {3, 3, 3, 3, 3, 3, 3, 6, 9, 12, 0, 7}, r);
        }
    }

    @Test
    void closedWorldsAreFreedOnceWhenCollected() throws Exception {
        // the store is shared between Java and the group's intrusive_ptr: freeing it twice corrupts the heap
        for (int i = 0; i < 4; i++) {
            assertEquals(List.of(1L, 1L), onRanks(2, Duration.ofSeconds(30), w -> w.allReduceSum(w.rank() == 0 ? 1L : 0L)));
            System.gc();
            Thread.sleep(200);
        }
    }

    @Test
    void bucketsSplitByDtypeAndSize() {
        Tensor f1 = Tensor.create(new float[] {1}, 1);
        Tensor d = Tensor.create(new double[] {1}, 1);
        Tensor f2 = Tensor.create(new float[] {1}, 1);
        assertEquals(List.of(1, 1, 1), World.buckets(List.of(f1, d, f2)).stream().map(List::size).toList());
        assertEquals(List.of(2), World.buckets(List.of(f1, f2)).stream().map(List::size).toList());
    }

    @Test
    void aRankThatStopsAnsweringFailsTheOthersWithinTheTimeoutNamingIt() throws Exception {
        long start = System.nanoTime();
        List<String> errors = onRanks(2, Duration.ofSeconds(3), w -> {
            w.report(0, List.of("step 0 going fine"));
            w.allReduceSum(1L);
            if (w.rank() == 1) {
                w.report(1, List.of("rank one's last words"));
                return "stopped";           // never makes the second collective
            }
            DistributedException e = assertThrows(DistributedException.class, () -> w.allReduceSum(2L));
            return e.getMessage();
        });
        double seconds = (System.nanoTime() - start) / 1e9;
        String message = errors.get(0);
        assertTrue(message.contains("rank 0") && message.contains("did not complete within 3 s"), message);
        assertTrue(message.contains("rank 1 last reported step 1") && message.contains("rank one's last words"), message);
        assertTrue(seconds < 20, "took " + seconds + " s");
    }

    /** Started collectives (overlap) sum as the waited ones do, whichever is finished first, and copy back on finish only. */
    @Test
    void startedCollectivesSumOnFinishAndReduceToTheirRootOnly() throws Exception {
        List<float[]> results = onRanks(2, Duration.ofSeconds(30), w -> {
            int r = w.rank();
            Tensor a = Tensor.create(new float[] {r + 1, 10 * (r + 1)}, 2);
            Tensor b = Tensor.create(new float[] {r, r, r}, 3);
            List<World.Pending> first = w.allReduceSumStart(List.of(a));
            List<World.Pending> second = w.reduceSumStart(List.of(b), 1);
            float before = floats(a)[0];   // not copied back before finish
            second.forEach(w::finish);
            first.forEach(w::finish);
            return new float[] {before, floats(a)[0], floats(a)[1], floats(b)[0], floats(b)[2]};
        });
        assertArrayEquals(new float[] {1, 3, 30, 0, 0}, results.get(0), "rank 0: not the reduce's root, b unchanged");
        assertArrayEquals(new float[] {2, 3, 30, 1, 1}, results.get(1));
    }

    /** invariant 6 for a started collective: its finish ends after ddp_timeout when the peer never starts its own. */
    @Test
    void aStartedCollectiveWhosePeerNeverComesFailsItsFinishWithinTheTimeout() throws Exception {
        long start = System.nanoTime();
        List<String> errors = onRanks(2, Duration.ofSeconds(3), w -> {
            w.allReduceSum(1L);
            if (w.rank() == 1) {
                return "stopped";
            }
            List<World.Pending> started = w.allReduceSumStart(List.of(torch.ones(4)));
            DistributedException e = assertThrows(DistributedException.class, () -> started.forEach(w::finish));
            return e.getMessage();
        });
        double seconds = (System.nanoTime() - start) / 1e9;
        assertTrue(errors.get(0).contains("rank 0") && errors.get(0).contains("did not complete within 3 s"), errors.get(0));
        assertTrue(seconds < 20, "took " + seconds + " s");
    }

    @Test
    void aRankThatNeverJoinsFailsTheJoinWithinTheTimeout() throws Exception {
        try (Rendezvous rv = Rendezvous.host("127.0.0.1", 2, Duration.ofSeconds(2))) {
            long start = System.nanoTime();
            DistributedException e = assertThrows(DistributedException.class,
                    () -> World.join(0, 2, rv.address(), "127.0.0.1", CPU, Duration.ofSeconds(2)));
            assertTrue(e.getMessage().contains("rank 0 could not join the Gloo group of 2 ranks"), e.getMessage());
            assertTrue((System.nanoTime() - start) / 1e9 < 20);
        }
    }
}
