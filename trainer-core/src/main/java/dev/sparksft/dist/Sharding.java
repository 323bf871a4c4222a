package dev.sparksft.dist;

import dev.sparksft.model.ModelLayout;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;

/**
 * How a step shares gradients, optimizer state and updated parameters among the ranks, by ZeRO
 * stage (docs/ARCHITECTURE.md invariant 9: sharding changes memory, not results):
 * <ul>
 *   <li>0: every rank holds everything; gradients are all-reduced (SUM) and every rank steps every tensor.</li>
 *   <li>1: gradients are all-reduced as in 0, but each rank's optimizer holds only the tensors the
 *       {@link Partition} gives it; after the step each owner broadcasts its tensors.</li>
 *   <li>2: as 1, and each gradient is reduced to its owner only; the other ranks drop it at once.</li>
 *   <li>3: as 2, and a rank holds the data of the trainable tensors it owns only: the others are
 *       released (the same Tensor object, which the model's layers reference, keeps its name,
 *       shape and requires_grad, but its data is an empty (0,) tensor). The trainer
 *       {@link #gather gathers} a group of tensors (one decoder layer's, the embedding's, the
 *       head's) from their owners right before it is used and {@link #release releases} it
 *       after; gradients are reduced to their owners group by group in the backward pass
 *       ({@link #reduceToOwners}), so nothing is broadcast after the step. Frozen tensors (LoRA's
 *       base, freeze's frozen layers) stay replicated.</li>
 * </ul>
 * Every rank makes the same collectives in the same order (invariant 3): the lists passed depend
 * only on the partition, on requires_grad (the same on every rank), for stage 2 on which
 * gradients any rank holds, which is itself all-reduced first, and for stage 3 on which tensors
 * are released, which every rank tracks alike (the owner too, though it keeps its data).
 *
 * <p>With overlap (overlap_gradient_reduction, several ranks) stages 0 to 2 reduce the step's
 * gradients while its last micro-batch's backward still runs: {@link #beginStepReduction} arms
 * it, the layer-by-layer backward reports each piece whose gradients are final
 * ({@link #gradientsReady}), and each bucket of the {@link BucketPlan} is started (World's
 * asynchronous all-reduce, or at stage 2 the held-gradient count, waited, then the reduces to
 * the owners, started) as soon as all its tensors are final, in plan order; {@link #reduceGradients}
 * starts what is left and waits for all, before the clip. Earlier micro-batches only accumulate.
 * Stage 3 keeps reducing every layer of every micro-batch (its non-owners free their gradients
 * at once), started rather than waited for; a micro-batch's reductions end at its end
 * ({@link #awaitReductions}), before the next adds to the owners' gradients.
 */
public final class Sharding {
    private final World world;
    private final int stage;
    private final Partition partition;
    private final List<String> names;   // trainable order
    private final Map<String, Tensor> tensors;
    private final Map<String, long[]> shapes;   // whole shapes: a released tensor's own is (0,)
    private final Map<Integer, List<String>> byLayer = new HashMap<>();   // decoder layer (-1: none) -> names
    private final Set<String> released = new HashSet<>();   // stage 3: the same set on every rank
    private final boolean overlap;                 // reduce each bucket as the backward completes it
    private final List<List<String>> plan;         // the buckets, in the order the backward completes them
    private final Set<String> ready = new HashSet<>();   // names whose gradient is final this step
    private final List<World.Pending> inFlight = new ArrayList<>();
    private boolean reducing;                      // between beginStepReduction and reduceGradients
    private int launched;                          // buckets of the plan started this step
    private int launchedInBackward;                // of them, started before reduceGradients (for the log and tests)

    /** {@link #Sharding(World, int, Map, boolean, long)} reducing after the backward, in one pass (no overlap). */
    public Sharding(World world, int stage, Map<String, Tensor> trainable) {
        this(world, stage, trainable, false, BucketPlan.DEFAULT_ELEMENTS);
    }

    /**
     * @param trainable      the parameters that train, in the order every rank iterates them (whole)
     * @param overlap        reduce each gradient bucket as soon as the backward has completed it
     *                       (overlap_gradient_reduction), instead of all of them after the backward
     * @param bucketElements the most elements of one overlapped bucket (a larger tensor is a bucket alone)
     */
    public Sharding(World world, int stage, Map<String, Tensor> trainable, boolean overlap, long bucketElements) {
        if (stage < 0 || stage > 3) {
            throw new IllegalStateException("ZeRO stage " + stage + " reached the trainer; only 0 to 3 exist here");
        }
        this.world = world;
        this.stage = stage;
        this.names = List.copyOf(trainable.keySet());
        this.tensors = new LinkedHashMap<>(trainable);
        this.shapes = new LinkedHashMap<>();
        Map<String, Long> numels = new LinkedHashMap<>();
        trainable.forEach((n, p) -> {
            numels.put(n, p.numel());
            shapes.put(n, p.sizes().vec().get());
            byLayer.computeIfAbsent(ModelLayout.layerIndex(n), k -> new ArrayList<>()).add(n);
        });
        this.partition = Partition.of(numels, world.size());
        this.overlap = overlap && world.size() > 1;
        this.plan = BucketPlan.of(names, numels, bucketElements);
    }

    /** The most elements of one overlapped bucket by default (DDP's 25 MiB of float32). */
    public static final long DEFAULT_BUCKET_ELEMENTS = BucketPlan.DEFAULT_ELEMENTS;

    /** The overlapped buckets ({@link BucketPlan}), first reduced first. */
    public List<List<String>> buckets() {
        return plan;
    }

    /** Whether gradients are reduced as the backward completes them (overlap_gradient_reduction on, several ranks). */
    public boolean overlaps() {
        return overlap;
    }

    /** Of the last step's buckets, how many were started during its backward rather than after it. */
    public int launchedInBackward() {
        return launchedInBackward;
    }

    /**
     * Stages 0 to 2 with overlap (a no-op otherwise): the next backward is the step's last
     * micro-batch, whose completed gradients are final; from here {@link #gradientsReady} starts
     * each bucket as soon as all its tensors are final. Earlier micro-batches accumulate locally
     * (DDP's no_sync).
     */
    public void beginStepReduction() {
        if (overlap && !shardsParameters()) {
            reducing = true;
            launchedInBackward = 0;
        }
    }

    /** Whether {@link #beginStepReduction} armed the reduction and {@link #reduceGradients} has not ended it. */
    public boolean reducing() {
        return reducing;
    }

    /**
     * The backward has completed the gradients of {@code group} (names; others are ignored):
     * while {@link #reducing}, starts every bucket of the plan, in order, whose tensors are all
     * final or do not train now; no collective is waited for here.
     */
    public void gradientsReady(Collection<String> group) {
        if (!reducing) {
            return;
        }
        ready.addAll(group);
        while (launched < plan.size() && complete(plan.get(launched))) {
            start(plan.get(launched++));
            launchedInBackward++;
        }
        finishCompleted();
    }

    private boolean complete(List<String> bucket) {
        for (String n : bucket) {
            if (!ready.contains(n) && tensors.get(n).requires_grad()) {
                return false;
            }
        }
        return true;
    }

    /** Starts one bucket's reduce: to every rank at stages 0 and 1, to each owner at stage 2. */
    private void start(List<String> bucket) {
        if (shardsGradients()) {
            reduceToOwners(bucket, tensors, true);
            return;
        }
        inFlight.addAll(world.allReduceSumStart(replicatedGradients(bucket.stream().map(tensors::get).toList())));
    }

    /**
     * The gradients of {@code params} that train now, the same list on every rank (requires_grad is
     * the same everywhere); one without data this step is zeros (gradients are released after each step).
     */
    private List<Tensor> replicatedGradients(java.util.Collection<Tensor> params) {
        List<Tensor> grads = new ArrayList<>();
        for (Tensor p : params) {
            if (!p.requires_grad()) {
                continue;
            }
            if (!p.grad().defined() && world.size() > 1) {
                p.mutable_grad().put(torch.zeros_like(p));
            }
            if (p.grad().defined()) {
                grads.add(p.grad());
            }
        }
        return grads;
    }

    /** Finishes the started collectives that have ended already, freeing their buffers early. */
    private void finishCompleted() {
        for (java.util.Iterator<World.Pending> it = inFlight.iterator(); it.hasNext(); ) {
            World.Pending p = it.next();
            if (p.isCompleted()) {
                it.remove();
                world.finish(p);
            }
        }
    }

    /**
     * Waits for every started collective (each wait bounded by ddp_timeout and the heartbeat, as
     * any collective here), in the order they started. Under stage 3 with overlap the layer
     * reductions of a micro-batch end here, before the next micro-batch adds to the owners'
     * gradients.
     */
    public void awaitReductions() {
        while (!inFlight.isEmpty()) {
            world.finish(inFlight.remove(0));
        }
    }

    /** No sharding at all, for a forward and backward outside a trainer (one rank, nothing trains). */
    public static Sharding none() {
        return new Sharding(World.single(), 0, Map.of());
    }

    public int stage() {
        return stage;
    }

    public Partition partition() {
        return partition;
    }

    /** Whether gradients live on their owner only after {@link #reduceGradients} (stages 2 and 3, several ranks). */
    public boolean shardsGradients() {
        return stage >= 2 && world.size() > 1;
    }

    /** Whether a rank holds only its own trainable tensors' data between uses (stage 3, several ranks). */
    public boolean shardsParameters() {
        return stage == 3 && world.size() > 1;
    }

    /** The parameters this rank's optimizer steps: all of them at stage 0, its own from stage 1. */
    public Map<String, Tensor> owned(Map<String, Tensor> trainable) {
        if (stage == 0) {
            return new LinkedHashMap<>(trainable);
        }
        Set<String> mine = partition.owned(world.rank());
        Map<String, Tensor> out = new LinkedHashMap<>();
        trainable.forEach((n, p) -> {
            if (mine.contains(n)) {
                out.put(n, p);
            }
        });
        return out;
    }

    /**
     * Sums the gradients over the ranks (SUM, invariant 2): into every rank at stages 0 and 1,
     * into the owner only at stage 2, where the other ranks then drop theirs (param.grad = None).
     * At stage 3 (several ranks) the backward pass already reduced every group: nothing is left.
     */
    public void reduceGradients(Map<String, Tensor> trainable) {
        if (shardsParameters()) {
            awaitReductions();
            return;
        }
        if (overlap) {
            // what the backward did not start (all of it when the last micro-batch had no data on
            // any rank, or its backward was not layer by layer), in plan order, then wait for all
            if (!reducing) {
                launchedInBackward = 0;
            }
            reducing = false;
            while (launched < plan.size()) {
                start(plan.get(launched++));
            }
            awaitReductions();
            launched = 0;
            ready.clear();
            return;
        }
        if (!shardsGradients()) {
            world.allReduceSumInPlace(replicatedGradients(trainable.values()));
            return;
        }
        reduceToOwners(names, trainable, false);
    }

    /**
     * Stage 3 (a no-op otherwise): the gradients of {@code group} (trainable names; others are
     * skipped) summed into their owners, the other ranks dropping theirs: one group's share of a
     * micro-batch, as soon as its backward is done. An owner's gradient accumulates over the
     * micro-batches of a step, since each reduce adds into what it holds.
     */
    public void reduceToOwners(Collection<String> group) {
        if (!shardsParameters()) {
            return;
        }
        List<String> ordered = new ArrayList<>();
        for (String n : names) {
            if (group.contains(n)) {
                ordered.add(n);
            }
        }
        reduceToOwners(ordered, tensors, overlap);
    }

    /**
     * Stage 2's reduce of {@code group} (trainable order), owner by owner; the non-owners drop
     * theirs. {@code async}: the reduces are started, not waited for (each bucket's values are
     * copied out first, so a non-owner drops its gradient at once); {@link #awaitReductions} ends them.
     */
    private void reduceToOwners(List<String> group, Map<String, Tensor> trainable, boolean async) {
        // a rank that dropped a gradient it does not own (or had no data this step) still sends zeros
        // wherever another rank has a gradient, so every rank reduces the same list
        long[] held = new long[group.size()];
        for (int i = 0; i < group.size(); i++) {
            held[i] = trainable.get(group.get(i)).grad().defined() ? 1 : 0;
        }
        long[] anyRank = world.allReduceSum(held);
        for (int r = 0; r < world.size(); r++) {
            List<Tensor> grads = new ArrayList<>();
            for (int i = 0; i < group.size(); i++) {
                String n = group.get(i);
                Tensor p = trainable.get(n);
                if (anyRank[i] == 0 || partition.owner(n) != r) {
                    continue;
                }
                if (held[i] == 0) {   // the whole shape: at stage 3 the data itself may be released
                    p.mutable_grad().put(torch.zeros(shapes.get(n), p.options()));
                }
                grads.add(p.grad());
            }
            if (async) {
                inFlight.addAll(world.reduceSumStart(grads, r));
            } else {
                world.reduceSumInPlace(grads, r);
            }
        }
        for (String n : group) {
            Tensor p = trainable.get(n);
            if (partition.owner(n) != world.rank() && p.grad().defined()) {
                p.mutable_grad().put(new Tensor());   // not ours: no memory for it until the next backward
            }
        }
    }

    /**
     * Stage 3 (a no-op otherwise): the whole data of the released tensors among {@code group} on
     * every rank, owner by owner, each owner broadcasting its tensors in buckets. {@code group}
     * must list the same names in the same order on every rank; names that do not train (frozen,
     * replicated) or are held already are skipped alike everywhere.
     */
    public void gather(Collection<String> group) {
        if (!shardsParameters()) {
            return;
        }
        List<String> away = new ArrayList<>();
        for (String n : group) {
            if (released.contains(n) && !away.contains(n)) {
                away.add(n);
            }
        }
        if (away.isEmpty()) {
            return;
        }
        try (PointerScope scope = new PointerScope(); NoGradGuard noGrad = new NoGradGuard()) {
            for (int r = 0; r < world.size(); r++) {
                List<Tensor> incoming = new ArrayList<>();
                for (String n : away) {
                    if (partition.owner(n) != r) {
                        continue;
                    }
                    Tensor p = tensors.get(n);
                    if (r != world.rank()) {   // room for the owner's values, in the same Tensor object
                        p.__dispatch_set_data(torch.empty(shapes.get(n), p.options(), new MemoryFormatOptional()));
                    }
                    incoming.add(p);
                }
                world.broadcast(incoming, r);
            }
        }
        released.removeAll(away);
    }

    /**
     * Stage 3 (a no-op otherwise): frees this rank's copy of the tensors of {@code group} it does
     * not own (their data becomes an empty (0,) tensor; the owner keeps its own). No collective.
     */
    public void release(Collection<String> group) {
        if (!shardsParameters()) {
            return;
        }
        try (PointerScope scope = new PointerScope()) {
            for (String n : group) {
                Tensor p = tensors.get(n);
                if (p == null || released.contains(n)) {
                    continue;
                }
                if (partition.owner(n) != world.rank()) {
                    p.__dispatch_set_data(torch.empty(new long[] {0}, p.options(), new MemoryFormatOptional()));
                }
                released.add(n);
            }
        }
    }

    /** Stage 3: every trainable tensor whole on every rank (the start broadcast, evaluation, saving). */
    public void gatherAll() {
        gather(names);
    }

    /** Stage 3: every rank back to the data of its own trainable tensors only. */
    public void releaseAll() {
        release(names);
    }

    /** The trainable names of decoder layer {@code layer} (its LoRA matrices included), in trainable order. */
    public List<String> layerTensors(int layer) {
        return byLayer.getOrDefault(layer, List.of());
    }

    /** The trainable names outside the decoder layers (embedding, final norm, LM head), in trainable order. */
    public List<String> outsideLayers() {
        return layerTensors(-1);
    }

    /** Stages 1 and 2: each owner broadcasts the tensors it just stepped, so every rank holds the whole model again. */
    public void broadcastUpdated(Map<String, Tensor> trainable) {
        if (stage == 0 || stage == 3 || world.size() == 1) {   // stage 3: gathered from the owner on use
            return;
        }
        for (int r = 0; r < world.size(); r++) {
            List<Tensor> updated = new ArrayList<>();
            for (String n : names) {
                Tensor p = trainable.get(n);
                if (partition.owner(n) == r && p.requires_grad()) {   // frozen by the optimizer: unchanged
                    updated.add(p);
                }
            }
            world.broadcast(updated, r);
        }
    }

    /**
     * The whole optimizer state on rank 0 (empty elsewhere) from each rank's {@code local} share,
     * for one world-size-independent optimizer.safetensors. Rank by rank, the owner broadcasts the
     * names, dtypes and shapes of its state, then the tensors in buckets; rank 0 keeps what it
     * receives (in the caller's PointerScope), the other ranks free each bucket at once. Ordered as the replicated optimizer orders its state:
     * by kind of state (exp_avg before exp_avg_sq, ...), then in trainable order.
     */
    public Map<String, Tensor> gatherState(Map<String, Tensor> local) {
        if (stage == 0 || world.size() == 1) {
            return local;
        }
        Map<String, Tensor> gathered = new LinkedHashMap<>();
        for (int r = 0; r < world.size(); r++) {
            String spec = world.broadcast(r == world.rank() ? describe(local) : null, r);
            List<Entry> entries = parse(spec);
            for (List<Entry> bucket : buckets(entries)) {
                boolean received = r != world.rank();
                // rank 0's copies stay in the caller's scope until written; elsewhere a bucket is freed at once
                try (PointerScope scope = world.isMain() ? null : new PointerScope()) {
                    List<Tensor> tensors = new ArrayList<>();
                    for (Entry e : bucket) {
                        torch.ScalarType dtype = scalarType(e.dtype());
                        tensors.add(received ? torch.zeros(e.shape(), new TensorOptions(dtype)).to(world.device(), dtype)
                                : local.get(e.name()));
                    }
                    world.broadcast(tensors, r);
                    if (world.isMain()) {
                        for (int i = 0; i < bucket.size(); i++) {
                            gathered.put(bucket.get(i).name(), tensors.get(i));
                        }
                    }
                }
            }
        }
        return world.isMain() ? ordered(gathered) : Map.of();
    }

    /**
     * The entries of a whole checkpointed state that this rank's optimizer holds: an entry
     * {@code <param>.<kind>} of a trainable tensor another rank owns is left out; everything else
     * (its own tensors, anything unknown) stays, so the optimizer still refuses a state that does not fit.
     */
    public Map<String, Tensor> ownedState(Map<String, Tensor> saved) {
        if (stage == 0) {
            return saved;
        }
        Set<String> mine = partition.owned(world.rank());
        Set<String> all = new LinkedHashSet<>(names);
        Map<String, Tensor> out = new LinkedHashMap<>();
        saved.forEach((k, t) -> {
            String param = paramOf(k);
            if (!all.contains(param) || mine.contains(param)) {
                out.put(k, t);
            }
        });
        return out;
    }

    private record Entry(String name, int dtype, long[] shape) {
        long numel() {
            long n = 1;
            for (long d : shape) {
                n *= d;
            }
            return n;
        }
    }

    /** One line per state tensor: name, dtype (ScalarType ordinal), shape "d0,d1,...". */
    private static torch.ScalarType scalarType(int value) {
        for (torch.ScalarType t : torch.ScalarType.values()) {
            if (t.value == value) {
                return t;
            }
        }
        throw new IllegalStateException("no libtorch dtype numbered " + value);
    }

    private static String describe(Map<String, Tensor> local) {
        StringBuilder out = new StringBuilder();
        local.forEach((n, t) -> {
            out.append(n).append('\t').append(t.scalar_type().value).append('\t');
            long[] shape = t.sizes().vec().get();
            for (int d = 0; d < shape.length; d++) {
                out.append(d == 0 ? "" : ",").append(shape[d]);
            }
            out.append('\n');
        });
        return out.toString();
    }

    private static List<Entry> parse(String spec) {
        List<Entry> out = new ArrayList<>();
        for (String line : spec.split("\n")) {
            if (line.isEmpty()) {
                continue;
            }
            String[] f = line.split("\t", -1);
            long[] shape = f[2].isEmpty() ? new long[0]
                    : java.util.Arrays.stream(f[2].split(",")).mapToLong(Long::parseLong).toArray();
            out.add(new Entry(f[0], Integer.parseInt(f[1]), shape));
        }
        return out;
    }

    /** Consecutive entries of one dtype, each run under {@link World#BUCKET_ELEMENTS}: the same split on every rank. */
    private static List<List<Entry>> buckets(List<Entry> entries) {
        List<List<Entry>> out = new ArrayList<>();
        List<Entry> current = new ArrayList<>();
        long elements = 0;
        for (Entry e : entries) {
            if (!current.isEmpty() && (current.get(0).dtype() != e.dtype() || elements + e.numel() > World.BUCKET_ELEMENTS)) {
                out.add(current);
                current = new ArrayList<>();
                elements = 0;
            }
            current.add(e);
            elements += e.numel();
        }
        if (!current.isEmpty()) {
            out.add(current);
        }
        return out;
    }

    /** By kind of state in order of first appearance, then by the parameter's place in trainable order. */
    private Map<String, Tensor> ordered(Map<String, Tensor> gathered) {
        List<String> kinds = new ArrayList<>(new LinkedHashSet<>(gathered.keySet().stream().map(Sharding::kindOf).toList()));
        List<String> keys = new ArrayList<>(gathered.keySet());
        keys.sort(Comparator.comparingInt((String k) -> kinds.indexOf(kindOf(k)))
                .thenComparingInt(k -> {
                    int i = names.indexOf(paramOf(k));
                    return i < 0 ? Integer.MAX_VALUE : i;
                }));
        Map<String, Tensor> out = new LinkedHashMap<>();
        keys.forEach(k -> out.put(k, gathered.get(k)));
        return out;
    }

    /** "model.layers.0.mlp.up_proj.weight" of "model.layers.0.mlp.up_proj.weight.exp_avg". */
    private static String paramOf(String key) {
        int dot = key.lastIndexOf('.');
        return dot < 0 ? key : key.substring(0, dot);
    }

    private static String kindOf(String key) {
        return key.substring(key.lastIndexOf('.') + 1);
    }
}
