package dev.sparksft.optim;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

/**
 * Adam whose moments live in a low-rank subspace of each 2-D target weight's gradient
 * ({@link Projector}): GaLore (galore_torch GaLoreAdamW) and APOLLO (apollo_torch AdamW). Both
 * use transformers' AdamW formula, as those libraries do, for target and other parameters alike:
 * <pre>
 *   R = project(G)                      (targets; R = G otherwise)
 *   m = lerp(m, R, 1 - b1) ;  v = b2 v + (1 - b2) R^2       ({@link AdamMoments}, in R's shape)
 *   N = m / (sqrt(v) + eps) ;  step = lr * sqrt(1 - b2^t) / (1 - b1^t)
 *   GaLore: U = scale * projectBack(N)
 *   APOLLO: s = ||N||_c / (||R||_c + 1e-8) per channel c (or one s per tensor); U = G * s
 *           with Fira's norm-growth limiter (||U|| may grow by at most 1.01x per step) and sqrt(scale)
 *   p -= step * U ;  p -= lr * wd * p   (decay after the update; none for biases and norms)
 * </pre>
 * State per parameter: m and v in the projected shape, the projection, and APOLLO's last norm.
 */
public final class ProjectedAdamW implements Optimizer {
    /** How the Adam direction in the subspace becomes an update. */
    public enum Kind { GALORE, APOLLO }

    /** The projection settings: galore_* or apollo_* keys. */
    public record Settings(Kind kind, int rank, int interval, double scale, String projType, boolean randomProjection,
                           boolean channelScaling, boolean scaleFront) {}

    private final Map<String, Tensor> params;
    private final Set<String> noDecay;
    private final Settings settings;
    private final double eps;
    private final double weightDecay;
    private final Map<String, Projector> projectors = new LinkedHashMap<>();
    /** In the projected shape (rank, n) or (m, rank) for targets, the parameter's shape otherwise. */
    private final Map<String, AdamMoments> moments = new LinkedHashMap<>();
    private final Map<String, Tensor> lastNorm = new LinkedHashMap<>();   // APOLLO's limiter, 0-d
    private final OptimizerState state = new OptimizerState();

    /**
     * @param targets names of the 2-D weights updated in the subspace
     * @param seed    seeds APOLLO's random projections (the same on every rank)
     */
    public ProjectedAdamW(Map<String, Tensor> params, Set<String> targets, Set<String> noDecay, Settings settings,
                          double beta1, double beta2, double eps, double weightDecay, long seed) {
        this(params, targets, noDecay, settings, beta1, beta2, eps, weightDecay, seed, List.copyOf(params.keySet()));
    }

    /**
     * @param order every trainable name in trainable order: a projection's seed derives from its
     *              parameter's place there, so a rank stepping a share of them (ZeRO) draws the same
     *              projections as one rank stepping all
     */
    public ProjectedAdamW(Map<String, Tensor> params, Set<String> targets, Set<String> noDecay, Settings settings,
                          double beta1, double beta2, double eps, double weightDecay, long seed, List<String> order) {
        this.params = new LinkedHashMap<>(params);
        this.noDecay = Set.copyOf(noDecay);
        this.settings = settings;
        this.eps = eps;
        this.weightDecay = weightDecay;
        for (Map.Entry<String, Tensor> e : params.entrySet()) {
            Tensor p = e.getValue();
            int index = order.indexOf(e.getKey()) + 1;
            if (index == 0) {
                throw new IllegalStateException(e.getKey() + " is not among the trainable names " + order);
            }
            Tensor shapeOf = p;
            if (targets.contains(e.getKey())) {
                if (p.dim() != 2) {
                    throw new IllegalStateException(e.getKey() + " is not 2-D and cannot be projected");
                }
                Projector proj = new Projector(p, settings.rank(), settings.interval(), settings.projType(),
                        settings.randomProjection(), seed * 1_000_003L + index);
                projectors.put(e.getKey(), proj);
                shapeOf = torch.zeros(proj.lowRankShape(p.sizes().vec().get()));
                if (settings.kind() == Kind.APOLLO) {
                    lastNorm.put(e.getKey(), torch.zeros(new long[0]).to(p.device(), p.scalar_type()));
                }
            }
            moments.put(e.getKey(), new AdamMoments(
                    torch.zeros(shapeOf.sizes().vec().get()).to(p.device(), p.scalar_type()),
                    torch.zeros(shapeOf.sizes().vec().get()).to(p.device(), p.scalar_type()), beta1, beta2));
        }
        moments.forEach((n, mo) -> state.add(n + ".exp_avg", mo.m));
        moments.forEach((n, mo) -> state.add(n + ".exp_avg_sq", mo.v));
        projectors.forEach((n, proj) -> {
            state.add(n + ".projector", proj.p);
            if (proj.q != null) {
                state.add(n + ".projector_right", proj.q);
            }
        });
        lastNorm.forEach((n, x) -> state.add(n + ".scaled_grad_norm", x));
    }

    @Override
    public void step(double lr) {
        long t = advance();
        for (String name : params.keySet()) {
            stepTensor(name, lr, t);
        }
    }

    /** Counts one more update of every tensor; returns its count t (1 for the first), for {@link #stepTensor}. */
    long advance() {
        return state.advance();
    }

    /**
     * The update of one tensor, the {@code t}-th, from its {@code .grad()} (none without one): what
     * {@link #step} does for each tensor, and what {@link LayerwiseOptimizer} does as soon as one
     * tensor's gradient is complete.
     */
    void stepTensor(String name, double lr, long t) {
        // temporaries of the parameter's size (projections, SVDs, masked moments) are freed per parameter
        try (NoGradGuard noGrad = new NoGradGuard(); PointerScope perParameter = new PointerScope()) {
            Tensor p = params.get(name);
            Tensor g = p.grad();
            if (!g.defined()) {
                return;
            }
            Projector proj = projectors.get(name);
            Tensor r = proj == null ? g : proj.project(g, t - 1);
            AdamMoments mo = moments.get(name);
            mo.update(r);
            Tensor update = mo.hfDirection(eps);
            if (proj != null) {
                update = settings.kind() == Kind.GALORE
                        ? proj.projectBack(update).mul_(new Scalar(settings.scale()))
                        : apolloUpdate(name, g, r, update, t);
            }
            p.add_(update, new Scalar(-mo.hfStepSize(lr, t)));
            if (weightDecay > 0 && !noDecay.contains(name)) {
                p.add_(p, new Scalar(-lr * weightDecay));
            }
        }
    }

    /** The names of the tensors this optimizer steps, in the order {@link #step} steps them. */
    List<String> names() {
        return List.copyOf(params.keySet());
    }

    /** APOLLO steps 3-4: the raw gradient scaled channel-wise (or tensor-wise) by the subspace's Adam ratio. */
    private Tensor apolloUpdate(String name, Tensor g, Tensor r, Tensor n, long t) {
        Tensor factor;
        if (settings.channelScaling()) {
            // norms over the low-rank dimension: one factor per column of a (r, n) or per row of a (m, r)
            int dim = n.size(0) < n.size(1) ? 0 : 1;
            long[] dims = {dim};
            factor = torch.norm(n, new org.bytedeco.pytorch.ScalarOptional(new Scalar(2.0)), dims, false)
                    .div(torch.norm(r, new org.bytedeco.pytorch.ScalarOptional(new Scalar(2.0)), dims, false)
                            .add(new Scalar(1e-8)));
            if (dim == 1) {
                factor = factor.unsqueeze(1);                       // (m, 1)
            }
        } else {
            factor = n.norm().div(r.norm().add(new Scalar(1e-8)));  // 0-d
        }
        Tensor scaled = g.mul(factor);
        double sqrtScale = Math.sqrt(settings.scale());
        if (settings.scaleFront()) {
            scaled.mul_(new Scalar(sqrtScale));
        }
        Tensor last = lastNorm.get(name);
        Tensor norm = scaled.norm();
        if (t > 1) {   // Fira's norm-growth limiter: at most 1.01x the previous step's norm
            double limiter = Math.max(norm.item_double() / (last.item_double() + 1e-8), 1.01) / 1.01;
            scaled.div_(new Scalar(limiter));
            last.fill_(new Scalar(norm.item_double() / limiter));
        } else {
            last.copy_(norm);
        }
        if (!settings.scaleFront()) {
            scaled.mul_(new Scalar(sqrtScale));
        }
        return scaled;
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
        state.load(saved, numSteps, settings.kind() == Kind.GALORE ? "GaLore" : "APOLLO");
    }
}
