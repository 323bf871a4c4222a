package dev.sparksft.dist;

import dev.sparksft.UserError;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.locks.LockSupport;
import org.bytedeco.javacpp.LongPointer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.javacpp.chrono.Milliseconds;
import org.bytedeco.pytorch.AllreduceOptions;
import org.bytedeco.pytorch.Backend;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.BroadcastOptions;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.ProcessGroupGloo;
import org.bytedeco.pytorch.ReduceOp;
import org.bytedeco.pytorch.ReduceOptions;
import org.bytedeco.pytorch.Store;
import org.bytedeco.pytorch.StringVector;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.Work;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.bytedeco.pytorch.nccl.ProcessGroupNCCL;

/**
 * The ranks that train together and the collectives the loop makes. Every rank makes the same
 * calls in the same order on every code path (docs/ARCHITECTURE.md invariant 3); collectives live here and
 * nowhere else.
 *
 * <p>One rank ({@link #single()}) needs no communication: a sum over ranks is the value itself.
 * Several ranks ({@link #join}) talk through a libtorch process group: Gloo on CPU, NCCL on GPU,
 * both rendezvousing through rank 0's {@link Rendezvous} store. Every wait (for the group to
 * form, for a collective) ends after the group's timeout (ddp_timeout), sooner when the
 * {@link Heartbeat} says a rank went silent or when this thread is interrupted, so a rank that
 * stops answering fails the others instead of hanging them (invariant 6).
 */
public final class World implements AutoCloseable {
    /** Gradients are all-reduced in flat buckets of at most this many float32 elements (64 MiB). */
    static final long BUCKET_ELEMENTS = 16L << 20;
    /** How long a Gloo wait blocks before it looks at the heartbeat and the thread's interrupt again. */
    private static final Milliseconds SLICE = new Milliseconds(1000);
    private static final String STATUS_KEY = "spark-sft/status/rank-";
    private static final String JOINED_KEY = "spark-sft/joined/rank-";

    private final int rank;
    private final int size;
    private final Backend group;         // null for a single rank
    private final Store store;           // null for a single rank
    private final Duration timeout;
    private final Device device;         // where collective buffers live: NCCL reduces CUDA tensors only
    private final Heartbeat heartbeat;   // null: waits end after the timeout alone
    private boolean abandoned;           // a collective was given up: the group is left in an unknown state

    private World(int rank, int size, Backend group, Store store, Duration timeout, Device device, Heartbeat heartbeat) {
        this.rank = rank;
        this.size = size;
        this.group = group;
        this.store = store;
        this.timeout = timeout;
        this.device = device;
        this.heartbeat = heartbeat;
    }

    public static World single() {
        return new World(0, 1, null, null, Duration.ZERO, new Device(torch.DeviceType.CPU), null);
    }

    /** {@link #join(int, int, Rendezvous.Address, String, Device, Duration, Heartbeat)} without a heartbeat: waits end after {@code timeout}. */
    public static World join(int rank, int size, Rendezvous.Address address, String hostname, Device device,
            Duration timeout) {
        return join(rank, size, address, hostname, device, timeout, null);
    }

    /**
     * Joins the process group of {@code size} ranks as {@code rank}. Blocks until every rank has
     * joined, or fails after {@code timeout}. The group's keys live in the address's namespace;
     * a rank refuses to go on when, once the group has formed, the store holds keys outside it
     * (someone that is not a rank of this attempt connected and wrote there, see {@link Rendezvous}).
     *
     * @param address  rank 0's {@link Rendezvous#address()}
     * @param hostname this rank's own address that the other ranks can reach (Gloo connects to it)
     * @param device   this rank's device: NCCL for a CUDA device, Gloo over TCP for the CPU
     * @param heartbeat this rank's {@link Heartbeat}: a wait for a rank it finds silent gives up then (null: none)
     */
    public static World join(int rank, int size, Rendezvous.Address address, String hostname, Device device,
            Duration timeout, Heartbeat heartbeat) {
        boolean cuda = device.type().value == torch.DeviceType.CUDA.value;
        if (rank < 0 || rank >= size) {
            throw new UserError("rank " + rank + " is outside a world of " + size);
        }
        // with a heartbeat, a store call ends after the silence timeout too: a frozen rank 0 (its store) cannot hold this
        // thread past the heartbeat's verdict; the group's own rendezvous starts once every rank is here (awaitJoined)
        Duration storeTimeout = heartbeat == null || heartbeat.timeout().compareTo(timeout) > 0 ? timeout : heartbeat.timeout();
        Store client = Rendezvous.connect(address, rank, storeTimeout);
        try {
            Store store = Rendezvous.scoped(client, address.namespace());
            store.set(JOINED_KEY + rank, "1");
            String groupName = (cuda ? "NCCL" : "Gloo") + " group of " + size + " ranks at " + address;
            awaitJoined(store, rank, size, groupName, timeout, heartbeat);
            Backend group = group(rank, size, groupName, hostname, cuda, store, timeout);
            int foreign = Rendezvous.foreignKeys(client, address.namespace());
            if (foreign > 0) {
                group.shutdown();
                throw new DistributedException("rank " + rank + ": rank 0's rendezvous store at " + address + " holds "
                        + foreign + " key(s) that no rank of this job wrote: a process outside the job connected to it."
                        + " Refusing to train; make the executors' addresses reachable from the cluster only"
                        + " (README, Security)");
            }
            return new World(rank, size, group, store, timeout, device, heartbeat);
        } finally {
            client.close();
        }
    }

    private static Backend group(int rank, int size, String groupName, String hostname, boolean cuda, Store store,
            Duration timeout) {
        Milliseconds ms = new Milliseconds(timeout.toMillis());
        try {
            if (cuda) {
                ProcessGroupNCCL.Options options = ProcessGroupNCCL.Options.create();
                options.timeout(ms);
                return new ProcessGroupNCCL(store, rank, size, options);
            }
            ProcessGroupGloo.Options options = ProcessGroupGloo.Options.create(ms);
            options.devices().push_back(ProcessGroupGloo.createDeviceForHostname(hostname));
            return new ProcessGroupGloo(store, rank, size, options);
        } catch (RuntimeException e) {
            throw new DistributedException("rank " + rank + " could not join the " + groupName + " within "
                    + timeout.toSeconds() + " s (ddp_timeout)" + missing(store, size) + ": " + firstLine(e.getMessage()), e);
        }
    }

    /**
     * Waits until every rank has marked itself joined, so that the group's own rendezvous (a
     * native call nothing interrupts) starts only when nobody is missing: a rank still loading
     * its model keeps the others here, where a silent rank, an interrupt or ddp_timeout ends
     * the wait.
     */
    private static void awaitJoined(Store store, int rank, int size, String group, Duration timeout, Heartbeat heartbeat) {
        StringVector keys = new StringVector();
        for (int r = 0; r < size; r++) {
            keys.push_back(JOINED_KEY + r);
        }
        long deadline = System.nanoTime() + timeout.toNanos();
        while (!store.check(keys)) {
            Optional<String> silent = heartbeat == null ? Optional.empty() : heartbeat.silence();
            if (silent.isPresent()) {
                throw new DistributedException("rank " + rank + " could not join the " + group + ": " + silent.get());
            }
            if (System.nanoTime() > deadline) {
                throw new DistributedException("rank " + rank + " could not join the " + group + " within "
                        + timeout.toSeconds() + " s (ddp_timeout)" + missing(store, size));
            }
            try {
                Thread.sleep(20);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new DistributedException("rank " + rank + " stopped waiting to join the " + group
                        + ": its thread was interrupted (Spark kills the other tasks of a barrier stage when one fails)"
                        + missing(store, size));
            }
        }
    }

    /** ", ranks [1, 3] never joined" from the ranks' join marks in the store ("" when all came). */
    private static String missing(Store store, int size) {
        List<Integer> missing = new ArrayList<>();
        try {
            for (int r = 0; r < size; r++) {
                if (!store.check(new StringVector(JOINED_KEY + r))) {
                    missing.add(r);
                }
            }
        } catch (RuntimeException e) {
            return ", and rank 0's store is unreachable";
        }
        return missing.isEmpty() ? "" : ", rank(s) " + missing + " never joined";
    }

    private static String firstLine(String message) {
        int trace = message == null ? -1 : message.indexOf("\nException raised from ");
        return trace < 0 ? String.valueOf(message) : message.substring(0, trace);
    }

    public int rank() {
        return rank;
    }

    public int size() {
        return size;
    }

    public boolean isMain() {
        return rank == 0;
    }

    /** Sum of {@code value} over all ranks. */
    public long allReduceSum(long value) {
        if (size == 1) {
            return value;
        }
        try (PointerScope scope = new PointerScope()) {
            Tensor t = Tensor.create(new long[] {value}, 1).to(device, ScalarType.Long);
            allReduce(new TensorVector(t), "a count");
            return t.item_long();
        }
    }

    /** Sum of {@code value} over all ranks (in float64). */
    public double allReduceSum(double value) {
        if (size == 1) {
            return value;
        }
        try (PointerScope scope = new PointerScope()) {
            Tensor t = Tensor.create(new double[] {value}, 1).to(device, ScalarType.Double);
            allReduce(new TensorVector(t), "a sum");
            return t.item_double();
        }
    }

    /**
     * Replaces each tensor by its sum over all ranks, in place (gradients: SUM, never mean,
     * invariant 2). The tensors are packed into flat buckets of one dtype, so a step makes a few
     * large collectives instead of one per parameter. Every rank must pass the same shapes in the
     * same order.
     */
    public void allReduceSumInPlace(List<Tensor> tensors) {
        if (size == 1 || tensors.isEmpty()) {
            return;
        }
        for (List<Tensor> bucket : buckets(tensors)) {
            try (PointerScope scope = new PointerScope()) {
                Tensor flat = flatten(bucket);                       // (sum of numel,)
                allReduce(new TensorVector(flat), "gradients");
                unflatten(flat, bucket);
            }
        }
    }

    /**
     * A collective started and not yet waited for ({@link #allReduceSumStart}, {@link #reduceSumStart}):
     * its work, the flat buffer it reduces, and the tensors the result is copied back into (none
     * on a reduce's non-root). The buffer and handles are owned here, outside every PointerScope,
     * until {@link #finish} frees them: the backward that started it closes its scopes before the
     * step waits.
     */
    public static final class Pending {
        private final Work work;
        private final Tensor flat;
        private final List<Tensor> into;   // owned handles on the bucket's tensors, empty on a non-root
        private final String what;

        private Pending(Work work, Tensor flat, List<Tensor> into, String what) {
            this.work = work;
            this.flat = flat;
            this.into = into;
            this.what = what;
        }

        /** Whether the collective has ended (completed or failed): {@link #finish} then returns or throws at once. */
        public boolean isCompleted() {
            return work.isCompleted();
        }
    }

    /**
     * Starts the SUM all-reduce of {@code tensors} (bucketed by dtype like {@link #allReduceSumInPlace})
     * and returns at once: the tensors hold their sum over the ranks once each returned collective
     * is {@link #finish finished}, and must not change until then (their values were copied into
     * the flat buffers). Every rank starts the same shapes in the same order.
     */
    public List<Pending> allReduceSumStart(List<Tensor> tensors) {
        return start(tensors, -1, "gradients");
    }

    /** Starts {@link #reduceSumInPlace}'s reduce to {@code root} and returns at once; see {@link #allReduceSumStart}. */
    public List<Pending> reduceSumStart(List<Tensor> tensors, int root) {
        checkRoot(root);
        return start(tensors, root, "gradients to rank " + root);
    }

    /**
     * Waits for {@code pending} as every collective here waits (ddp_timeout, a silent rank's
     * heartbeat, an interrupt end it with a {@link DistributedException}), copies the result back
     * and frees its buffer.
     */
    public void finish(Pending pending) {
        await(pending.work, pending.what);
        unflatten(pending.flat, pending.into);
        pending.into.forEach(Tensor::close);
        pending.flat.close();
        pending.work.close();
    }

    private List<Pending> start(List<Tensor> tensors, int root, String what) {
        List<Pending> out = new ArrayList<>();
        if (size == 1 || tensors.isEmpty()) {
            return out;
        }
        for (List<Tensor> bucket : buckets(tensors)) {
            try (PointerScope scope = new PointerScope()) {
                Tensor flat = flatten(bucket);                       // (sum of numel,), a copy
                Work work;
                if (root < 0) {
                    AllreduceOptions options = new AllreduceOptions();
                    options.reduceOp(new ReduceOp(ReduceOp.RedOpType.SUM));
                    options.timeout(new Milliseconds(timeout.toMillis()));
                    work = group.allreduce(new TensorVector(flat), options);
                } else {
                    ReduceOptions options = new ReduceOptions();
                    options.rootRank(root);
                    options.reduceOp(new ReduceOp(ReduceOp.RedOpType.SUM));
                    options.timeout(new Milliseconds(timeout.toMillis()));
                    work = group.reduce(new TensorVector(flat), options);
                }
                List<Tensor> into = new ArrayList<>();
                if (root < 0 || root == rank) {
                    for (Tensor t : bucket) {
                        into.add(outliving(t.detach(), scope));      // the same storage, a handle of our own
                    }
                }
                out.add(new Pending(outliving(work, scope), outliving(flat, scope), into, what));
            }
        }
        return out;
    }

    /** {@code p} taken out of {@code scope} alive: its reference is then ours, released by its close(). */
    private static <P extends org.bytedeco.javacpp.Pointer> P outliving(P p, PointerScope scope) {
        p.retainReference();
        scope.detach(p);
        return p;
    }

    /** Overwrites each tensor with rank 0's values (initial parameters, so every replica starts equal). */
    public void broadcastFromMain(List<Tensor> tensors) {
        broadcast(tensors, 0, "parameters from rank 0");
    }

    /**
     * Overwrites each tensor with rank {@code root}'s values, in buckets (ZeRO: an owner's updated
     * parameters, or its optimizer state for a checkpoint). Every rank passes the same shapes and
     * dtypes in the same order.
     */
    public void broadcast(List<Tensor> tensors, int root) {
        broadcast(tensors, root, "tensors from rank " + root);
    }

    private void broadcast(List<Tensor> tensors, int root, String what) {
        checkRoot(root);
        if (size == 1 || tensors.isEmpty()) {
            return;
        }
        for (List<Tensor> bucket : buckets(tensors)) {
            try (PointerScope scope = new PointerScope()) {
                Tensor flat = flatten(bucket);
                BroadcastOptions options = new BroadcastOptions();
                options.rootRank(root);
                options.timeout(new Milliseconds(timeout.toMillis()));
                await(group.broadcast(new TensorVector(flat), options), what);
                if (rank != root) {
                    unflatten(flat, bucket);
                }
            }
        }
    }

    /**
     * Replaces each tensor on rank {@code root} by its sum over all ranks (ZeRO stage 2: a gradient
     * reaches its owner only); on the other ranks the tensors are left as they were. Bucketed like
     * {@link #allReduceSumInPlace}; every rank passes the same shapes in the same order.
     */
    public void reduceSumInPlace(List<Tensor> tensors, int root) {
        checkRoot(root);
        if (size == 1 || tensors.isEmpty()) {
            return;
        }
        for (List<Tensor> bucket : buckets(tensors)) {
            try (PointerScope scope = new PointerScope()) {
                Tensor flat = flatten(bucket);                       // (sum of numel,)
                ReduceOptions options = new ReduceOptions();
                options.rootRank(root);
                options.reduceOp(new ReduceOp(ReduceOp.RedOpType.SUM));
                options.timeout(new Milliseconds(timeout.toMillis()));
                await(group.reduce(new TensorVector(flat), options), "gradients to rank " + root);
                if (rank == root) {
                    unflatten(flat, bucket);
                }
            }
        }
    }

    /** Element-wise sum of {@code values} over all ranks (int64; e.g. which gradients any rank holds). */
    public long[] allReduceSum(long[] values) {
        if (size == 1 || values.length == 0) {
            return values.clone();
        }
        try (PointerScope scope = new PointerScope()) {
            Tensor t = Tensor.create(values, values.length).to(device, ScalarType.Long);
            allReduce(new TensorVector(t), "counts");
            return longs(t);
        }
    }

    /**
     * Rank {@code root}'s {@code text} on every rank (the others pass anything, e.g. null): the
     * names, shapes and dtypes of a rank's optimizer state before it is broadcast. Two collectives:
     * the length, then the UTF-8 bytes (one per int64, as Gloo and NCCL both reduce int64).
     */
    public String broadcast(String text, int root) {
        checkRoot(root);
        if (size == 1) {
            return text;
        }
        byte[] bytes = rank == root ? text.getBytes(StandardCharsets.UTF_8) : new byte[0];
        try (PointerScope scope = new PointerScope()) {
            Tensor length = Tensor.create(new long[] {bytes.length}, 1).to(device, ScalarType.Long);
            broadcast(List.of(length), root, "a length from rank " + root);
            int n = (int) length.item_long();
            long[] codes = new long[n];
            for (int i = 0; i < bytes.length; i++) {
                codes[i] = bytes[i];
            }
            if (n == 0) {
                return "";
            }
            Tensor t = Tensor.create(codes, n).to(device, ScalarType.Long);
            broadcast(List.of(t), root, "a description from rank " + root);
            long[] got = longs(t);
            byte[] out = new byte[n];
            for (int i = 0; i < n; i++) {
                out[i] = (byte) got[i];
            }
            return new String(out, StandardCharsets.UTF_8);
        }
    }

    /** Where collective buffers live: the device a rank allocates tensors it receives on. */
    public Device device() {
        return device;
    }

    private void checkRoot(int root) {
        if (root < 0 || root >= size) {
            throw new IllegalStateException("root rank " + root + " is outside a world of " + size);
        }
    }

    private static long[] longs(Tensor t) {
        Tensor c = t.cpu().contiguous();
        long[] out = new long[(int) c.numel()];
        new LongPointer(c.data_ptr()).capacity(out.length).get(out);
        return out;
    }

    /**
     * Publishes this rank's progress (last finished step and recent log lines) in the shared
     * store, so that when this rank stops answering, the others can say where it was.
     */
    public void report(long step, List<String> recentLines) {
        if (size == 1) {
            return;
        }
        try {
            store.set(STATUS_KEY + rank, "step " + step + (recentLines.isEmpty() ? ""
                    : "; its last log lines:\n    " + String.join("\n    ", recentLines)));
        } catch (RuntimeException e) {
            throw new DistributedException("rank " + rank + " lost rank 0's rendezvous store (rank 0 died?): "
                    + e.getMessage(), e);
        }
    }

    /** What every other rank last {@link #report reported}, one paragraph per rank. */
    public String peerReports() {
        StringBuilder out = new StringBuilder();
        for (int r = 0; r < size; r++) {
            if (r == rank) {
                continue;
            }
            String status;
            try {
                status = lastReport(store, r);
            } catch (RuntimeException e) {
                status = "unknown: the store on rank 0 is unreachable (" + e.getMessage() + ")";
            }
            out.append("\n  rank ").append(r).append(" last reported ").append(status);
        }
        return out.toString();
    }

    /** What rank {@code r} last {@link #report reported} in {@code store} ("step 3; its last log lines: ..."). */
    static String lastReport(Store store, int r) {
        try (PointerScope scope = new PointerScope()) {
            StringVector key = new StringVector(STATUS_KEY + r);
            return store.check(key) ? store.get_to_str(STATUS_KEY + r) : "no report yet (it never started training)";
        }
    }

    private void allReduce(TensorVector tensors, String what) {
        AllreduceOptions options = new AllreduceOptions();
        options.reduceOp(new ReduceOp(ReduceOp.RedOpType.SUM));
        options.timeout(new Milliseconds(timeout.toMillis()));
        await(group.allreduce(tensors, options), what);
    }

    private void await(Work work, String what) {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (!finished(work)) {
            giveUpIfHopeless(what, deadline);
        }
        RuntimeException failure = null;
        try {
            if (work._wait(new Milliseconds(timeout.toMillis()))) {   // finished: returns, or throws its failure, at once
                return;
            }
        } catch (RuntimeException e) {
            failure = e;
        }
        if (failure != null && !String.valueOf(failure.getMessage()).toLowerCase(java.util.Locale.ROOT).contains("timed out")) {
            // a peer's process died or closed its group: the transport fails at once
            throw new DistributedException("rank " + rank + ": the collective on " + what + " failed: "
                    + firstLine(failure.getMessage()) + " (another rank died or left the group)" + peerReports(), failure);
        }
        throw new DistributedException("rank " + rank + ": the collective on " + what + " did not complete within "
                + timeout.toSeconds() + " s (ddp_timeout): another rank stopped answering." + peerReports(), failure);
    }

    /** Waits for {@code work} a little; whether it finished (completed or failed). */
    private boolean finished(Work work) {
        if (device.type().value == torch.DeviceType.CUDA.value) {
            // an NCCL wait whose timeout passes aborts the communicator: poll, as that wait itself does (1 ms)
            if (work.isCompleted()) {
                return true;
            }
            LockSupport.parkNanos(1_000_000L);
            return work.isCompleted();
        }
        try {
            return work._wait(SLICE);   // a Gloo wait returns as soon as the work completes
        } catch (RuntimeException e) {
            return work.isCompleted();   // "Operation timed out!" after the slice leaves the work running
        }
    }

    /** Ends a wait for a collective that cannot complete: a rank went silent, the thread was interrupted, ddp_timeout passed. */
    private void giveUpIfHopeless(String what, long deadline) {
        Optional<String> silent = heartbeat == null ? Optional.empty() : heartbeat.silence();
        String why = silent.map(s -> "gave up the collective on " + what + ": " + s)
                .orElse(Thread.currentThread().isInterrupted()
                        ? "stopped waiting for the collective on " + what + ": its thread was interrupted (Spark kills the"
                                + " other tasks of a barrier stage when one fails)"
                        : System.nanoTime() > deadline ? "the collective on " + what + " did not complete within "
                                + timeout.toSeconds() + " s (ddp_timeout): another rank stopped answering." + peerReports()
                        : null);
        if (why != null) {
            abandoned = true;
            throw new DistributedException("rank " + rank + ": " + why);
        }
    }

    /** Consecutive runs of tensors with one dtype and device, each under {@link #BUCKET_ELEMENTS}. */
    static List<List<Tensor>> buckets(List<Tensor> tensors) {
        List<List<Tensor>> out = new ArrayList<>();
        List<Tensor> current = new ArrayList<>();
        long elements = 0;
        for (Tensor t : tensors) {
            boolean sameKind = current.isEmpty() || current.get(0).scalar_type().value == t.scalar_type().value
                    && current.get(0).device().type().value == t.device().type().value;
            if (!current.isEmpty() && (!sameKind || elements + t.numel() > BUCKET_ELEMENTS)) {
                out.add(current);
                current = new ArrayList<>();
                elements = 0;
            }
            current.add(t);
            elements += t.numel();
        }
        if (!current.isEmpty()) {
            out.add(current);
        }
        return out;
    }

    private static Tensor flatten(List<Tensor> bucket) {
        TensorVector parts = new TensorVector();
        for (Tensor t : bucket) {
            parts.push_back(t.reshape(-1));
        }
        return torch.cat(parts);
    }

    /** Copies {@code flat} back into the bucket's tensors (parameters too: outside autograd). */
    private static void unflatten(Tensor flat, List<Tensor> bucket) {
        try (NoGradGuard noGrad = new NoGradGuard()) {
            long offset = 0;
            for (Tensor t : bucket) {
                t.copy_(flat.narrow(0, offset, t.numel()).view(t.sizes().vec().get()));
                offset += t.numel();
            }
        }
    }

    @Override
    public void close() {
        if (group == null) {
            return;
        }
        try {
            if (abandoned) {
                group.abort();      // NCCL: stops the kernels still waiting for the silent rank
            } else {
                group.shutdown();
            }
        } catch (RuntimeException e) {
            // already broken (a peer died); nothing left to release cleanly
        }
        if (abandoned) {
            // freeing a group waits for its pending collectives, which wait for the silent rank until its connections
            // close (its process ends) or ddp_timeout passes: free it in a thread of its own, not in the one that
            // frees every collected native object
            Thread free = new Thread(group::close, "spark-sft-free-abandoned-group-rank-" + rank);
            free.setDaemon(true);
            free.start();
        }
    }
}
