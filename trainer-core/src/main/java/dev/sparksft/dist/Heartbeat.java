package dev.sparksft.dist;

import java.time.Duration;
import java.util.Arrays;
import java.util.Optional;

/**
 * Whether every rank is alive, whatever ddp_timeout says (a collective may wait that long; LLaMA-
 * Factory's examples set it to 180000000 s). A daemon thread bumps this rank's counter in rank
 * 0's store every interval and reads the others'; a rank whose counter has not moved for
 * rank_silence_timeout is silent, and {@link #silence()} then says which and what it last
 * reported. The thread beats whatever the rank's own thread does (loading a model, saving a
 * checkpoint, evaluating, waiting in a collective for a peer), so only a rank whose process stopped
 * (hung, frozen, killed without closing its connections, or cut off) goes silent; {@link World}'s
 * waits ask and give up naming it.
 */
public final class Heartbeat implements AutoCloseable {
    private static final String BEAT_KEY = "spark-sft/beat/rank-";

    private final org.bytedeco.pytorch.Store store;   // a client of its own: World's may be blocked in a long call
    private final int rank;
    private final int size;
    private final Duration silence;
    private final Thread thread;
    private volatile boolean beating = true;
    private volatile boolean running = true;
    private volatile String verdict;       // why a peer counts as silent; null while all beat

    private Heartbeat(org.bytedeco.pytorch.Store store, int rank, int size, Duration silence) {
        this.store = store;
        this.rank = rank;
        this.size = size;
        this.silence = silence;
        this.thread = new Thread(this::loop, "spark-sft-heartbeat-rank-" + rank);
        thread.setDaemon(true);
    }

    /**
     * Starts beating into the store at {@code address} (rank 0's {@link Rendezvous}) and
     * watching the other {@code size - 1} ranks, who must start theirs within {@code silence}.
     */
    public static Heartbeat start(Rendezvous.Address address, int rank, int size, Duration silence) {
        // its store calls fail after `silence`: a frozen rank 0 (and its store) cannot block the watch longer; its keys
        // live in the attempt's namespace, like the group's, so World's check for foreign keys does not count them
        Heartbeat h = new Heartbeat(size == 1 ? null : scopedClient(address, rank, silence), rank, size, silence);
        if (size > 1) {
            h.thread.start();
        }
        return h;
    }

    private static org.bytedeco.pytorch.Store scopedClient(Rendezvous.Address address, int rank, Duration silence) {
        org.bytedeco.pytorch.Store client = Rendezvous.connect(address, rank, silence);
        try {
            return Rendezvous.scoped(client, address.namespace());
        } finally {
            client.close();
        }
    }

    /** How often a rank beats: often enough that a silence is seen within a tenth of the timeout after it passes. */
    static long intervalMillis(Duration silence) {
        return Math.max(100, Math.min(10_000, silence.toMillis() / 10));
    }

    /** Why a peer counts as silent ("rank 1 has sent no heartbeat for 6.2 s ..."), or empty while every rank beats. */
    public Optional<String> silence() {
        return Optional.ofNullable(verdict);
    }

    /** rank_silence_timeout: how long a rank may send no heartbeat before it counts as silent. */
    public Duration timeout() {
        return silence;
    }

    /** Stops this rank's beats while its thread goes on: what a frozen process looks like to the others (test hooks). */
    public void stopBeating() {
        beating = false;
    }

    private void loop() {
        long interval = intervalMillis(silence);
        long silenceNanos = silence.toNanos();
        long[] seen = new long[size];
        long[] changedAt = new long[size];
        long lastAnswer = System.nanoTime();
        Arrays.fill(changedAt, lastAnswer);
        while (running) {   // beating on after a verdict: this rank is not the silent one
            boolean answered = round(seen, changedAt);
            long now = System.nanoTime();
            if (answered) {
                if (now - lastAnswer > silenceNanos / 2 + interval * 1_000_000L) {
                    Arrays.fill(changedAt, now);   // this thread could not watch meanwhile (its JVM paused): judge afresh
                }
                lastAnswer = now;
                for (int r = 0; r < size && verdict == null; r++) {
                    if (r != rank && now - changedAt[r] > silenceNanos) {
                        verdict = silent(r, now - changedAt[r], seen[r] > 0);
                    }
                }
            } else if (verdict == null && now - lastAnswer > silenceNanos) {
                verdict = "rank 0's store, where the ranks beat, has not answered for " + seconds(now - lastAnswer)
                        + " (rank_silence_timeout " + silence.toSeconds() + " s): rank 0 is hung, frozen, dead or cut off";
            }
            try {
                Thread.sleep(interval);
            } catch (InterruptedException e) {
                return;
            }
        }
    }

    /** Beats once and reads every other rank's count; false when the store did not answer. */
    private boolean round(long[] seen, long[] changedAt) {
        try {
            if (beating) {
                store.add(BEAT_KEY + rank, 1);
            }
            for (int r = 0; r < size; r++) {
                if (r != rank) {
                    long count = store.add(BEAT_KEY + r, 0);   // add, not get: get would wait for a rank that never beat
                    if (count != seen[r]) {
                        seen[r] = count;
                        changedAt[r] = System.nanoTime();
                    }
                }
            }
            return true;
        } catch (RuntimeException e) {
            return false;
        }
    }

    private String silent(int r, long nanos, boolean everBeat) {
        String report;
        try {
            report = World.lastReport(store, r);
        } catch (RuntimeException e) {
            report = "unknown (" + e.getMessage() + ")";
        }
        return "rank " + r + (everBeat ? " has sent no heartbeat for " : " has not sent a heartbeat in ") + seconds(nanos)
                + " (rank_silence_timeout " + silence.toSeconds() + " s): its process is hung, frozen, dead or cut off;"
                + " it last reported " + report;
    }

    private static String seconds(long nanos) {
        return String.format("%.1f s", nanos / 1e9);
    }

    /** Stops the thread; its store client is freed when collected, as {@link World}'s is. */
    @Override
    public void close() {
        running = false;
        thread.interrupt();
    }
}
