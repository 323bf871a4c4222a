package dev.sparksft.optim;

import dev.sparksft.UserError;
import dev.sparksft.model.ModelLayout;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

/**
 * BAdam's ratio mode (Ledzy/BAdam BlockOptimizerRatio, LLaMA-Factory's {@code badam_mode: ratio}):
 * every weight tensor updates only {@code badam_update_ratio} of its entries, chosen by a mask
 * that moves on every {@value #SWITCH_EVERY} steps, with Adam moments kept for those entries only:
 * <pre>
 *   k = floor(numel x ratio) entries: adjacent (offset.. offset+k, wrapping) or scatter (a seeded
 *   permutation's offset.. offset+k); tensors of under {@value #PRESERVE_THRESHOLD} weights update whole
 *   g = G[mask] ;  m = lerp(m, g, 1 - b1) ;  v = b2 v + (1 - b2) g^2      ({@link AdamMoments} of the k entries)
 *   p[mask] -= lr sqrt(1 - b2^s) / (1 - b1^s) * m / (sqrt(v) + eps)      (s counts steps since the last move)
 *   every SWITCH_EVERY steps: offset += k, moments reset
 * </pre>
 * As in BAdam, there is no weight decay in this mode and embeddings and the LM head stay frozen.
 * Masks depend only on the tensor's shape, the step and the seed, so every rank draws the same.
 */
public final class SparseBlockAdam implements Optimizer {
    /** BlockOptimizerRatio's switch_every, which LLaMA-Factory leaves at its default. */
    static final int SWITCH_EVERY = 100;
    /** BlockOptimizerRatio's preserve_threshold. */
    static final int PRESERVE_THRESHOLD = 100;

    private final Map<String, Tensor> params = new LinkedHashMap<>();
    private final double ratio;
    private final boolean scatter;
    private final int switchEvery;
    private final int preserveThreshold;
    private final long seed;
    private final double eps;
    private final Map<String, AdamMoments> moments = new LinkedHashMap<>();   // m, v: (k)
    private final OptimizerState state = new OptimizerState();
    /** This block's masks by shape (BAdam's keep_mask): computed once per move, not per step. */
    private final Map<String, Tensor> masks = new LinkedHashMap<>();
    private long maskBlock = -1;

    public SparseBlockAdam(Map<String, Tensor> trainable, double ratio, String maskMode, long seed, double beta1,
                           double beta2, double eps) {
        this(trainable, trainable.keySet(), ratio, maskMode, seed, beta1, beta2, eps);
    }

    /**
     * @param owned the tensors this rank steps (ZeRO: its share): embeddings and the head are frozen
     *              in all of {@code trainable} all the same, so every rank computes the same gradients
     */
    public SparseBlockAdam(Map<String, Tensor> trainable, Set<String> owned, double ratio, String maskMode, long seed,
                           double beta1, double beta2, double eps) {
        this(trainable, owned, ratio, maskMode, SWITCH_EVERY, PRESERVE_THRESHOLD, seed, beta1, beta2, eps);
    }

    SparseBlockAdam(Map<String, Tensor> trainable, double ratio, String maskMode, int switchEvery, int preserveThreshold,
                    long seed, double beta1, double beta2, double eps) {
        this(trainable, trainable.keySet(), ratio, maskMode, switchEvery, preserveThreshold, seed, beta1, beta2, eps);
    }

    private SparseBlockAdam(Map<String, Tensor> trainable, Set<String> owned, double ratio, String maskMode,
                            int switchEvery, int preserveThreshold, long seed, double beta1, double beta2, double eps) {
        if (!(ratio > 0 && ratio <= 1)) {
            throw new UserError("badam_update_ratio must be in (0, 1], got " + ratio);
        }
        this.ratio = ratio;
        this.scatter = maskMode.equals("scatter");
        this.switchEvery = switchEvery;
        this.preserveThreshold = preserveThreshold;
        this.seed = seed;
        this.eps = eps;
        boolean[] trains = {false};
        trainable.forEach((name, p) -> {
            boolean frozen = ModelLayout.isEmbeddingOrHead(name);
            p.set_requires_grad(!frozen);
            trains[0] |= !frozen;
            if (!frozen && owned.contains(name)) {
                params.put(name, p);
                long k = count(p);
                moments.put(name, new AdamMoments(torch.zeros(k).to(p.device(), p.scalar_type()),
                        torch.zeros(k).to(p.device(), p.scalar_type()), beta1, beta2));
            }
        });
        moments.forEach((n, mo) -> state.add(n + ".exp_avg", mo.m));
        moments.forEach((n, mo) -> state.add(n + ".exp_avg_sq", mo.v));
        if (!trains[0]) {
            throw new UserError("badam_mode: ratio found no trainable tensor besides embeddings and head");
        }
    }

    /** The entries a tensor updates per step. */
    private long count(Tensor p) {
        return p.numel() < preserveThreshold ? p.numel() : (long) (p.numel() * ratio);
    }

    /** The flat indices this step updates: (k) int64 on the tensor's device, one mask per shape and block. */
    private Tensor mask(Tensor p, long block) {
        if (block != maskBlock) {
            masks.values().forEach(Tensor::close);
            masks.clear();
            maskBlock = block;
        }
        String key = java.util.Arrays.toString(p.sizes().vec().get()) + "@" + p.device().str().getString();
        Tensor cached = masks.get(key);
        if (cached == null) {
            cached = OptimizerState.outliveScope(newMask(p, block));
            masks.put(key, cached);
        }
        return cached;
    }

    private Tensor newMask(Tensor p, long block) {
        long n = p.numel();
        long k = count(p);
        if (k == n) {
            return torch.arange(new Scalar(n)).to(p.device(), torch.ScalarType.Long);
        }
        long offset = block * k % n;
        long[] idx = new long[(int) k];
        int[] perm = null;
        if (scatter) {   // one permutation per shape, as BAdam keeps one mask per shape
            perm = dev.sparksft.runtime.Permutation.shuffled((int) n,
                    new SplittableRandom(seed * 31 + java.util.Arrays.hashCode(p.sizes().vec().get())));
        }
        for (int i = 0; i < k; i++) {
            long at = (offset + i) % n;
            idx[i] = perm == null ? at : perm[(int) at];
        }
        return Tensor.create(idx, k).to(p.device(), torch.ScalarType.Long);
    }

    @Override
    public void step(double lr) {
        long done = state.numSteps();
        long block = done / switchEvery;            // the mask has moved this many times
        long s = done % switchEvery + 1;            // steps since the moments were reset
        if (s == 1 && done > 0) {
            state.tensors().values().forEach(Tensor::zero_);
        }
        state.advance();
        try (NoGradGuard noGrad = new NoGradGuard()) {
            for (Map.Entry<String, Tensor> e : params.entrySet()) {
                // temporaries of the parameter's size (projections, SVDs, masked moments) are freed per parameter
                try (PointerScope perParameter = new PointerScope()) {
                    Tensor p = e.getValue();
                    Tensor grad = p.grad();
                    if (!grad.defined()) {
                        continue;
                    }
                    Tensor idx = mask(p, block);
                    Tensor g = grad.reshape(-1).index_select(0, idx);           // (k)
                    AdamMoments mo = moments.get(e.getKey());
                    mo.update(g);
                    Tensor update = mo.hfDirection(eps).mul_(new Scalar(-mo.hfStepSize(lr, s)));
                    p.view(-1).index_add_(0, idx, update);
                }
            }
        }
    }

    @Override
    public long numSteps() {
        return state.numSteps();
    }

    @Override
    public Map<String, Tensor> state() {
        return state.tensors();
    }

    @Override
    public void load(Map<String, Tensor> saved, long numSteps) {
        state.load(saved, numSteps, "BAdam (ratio)");
    }

    /** The names this optimizer updates (for tests). */
    List<String> names() {
        return List.copyOf(params.keySet());
    }
}
