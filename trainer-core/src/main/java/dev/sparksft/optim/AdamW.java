package dev.sparksft.optim;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

/**
 * Adam with decoupled weight decay, exactly torch.optim.AdamW's update (adamw_torch):
 * <pre>
 *   p  = p * (1 - lr * wd)                      (decay params only)
 *   m  = b1 * m + (1 - b1) * g
 *   v  = b2 * v + (1 - b2) * g^2
 *   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 * </pre>
 */
public final class AdamW implements Optimizer {
    private final Map<String, Tensor> params;
    private final Set<String> noDecay;
    private final Map<String, Double> lrScale;
    private final double eps;
    private final double weightDecay;
    private final Map<String, AdamMoments> moments = new LinkedHashMap<>();   // shaped like each parameter
    private final OptimizerState state = new OptimizerState();

    /** @param noDecay names of parameters without weight decay (biases, norms) */
    public AdamW(Map<String, Tensor> params, Set<String> noDecay, double beta1, double beta2, double eps,
                 double weightDecay) {
        this(params, noDecay, Map.of(), beta1, beta2, eps, weightDecay);
    }

    /**
     * @param lrScale per-parameter learning-rate multipliers (LoRA+ parameter groups: a group's lr
     *                is learning_rate x its ratio, scheduled like the rest); absent means 1
     */
    public AdamW(Map<String, Tensor> params, Set<String> noDecay, Map<String, Double> lrScale, double beta1,
                 double beta2, double eps, double weightDecay) {
        this.params = new LinkedHashMap<>(params);
        this.lrScale = Map.copyOf(lrScale);
        this.noDecay = Set.copyOf(noDecay);
        this.eps = eps;
        this.weightDecay = weightDecay;
        params.forEach((name, p) -> moments.put(name, new AdamMoments(torch.zeros_like(p), torch.zeros_like(p), beta1,
                beta2)));
        moments.forEach((name, mo) -> state.add(name + ".exp_avg", mo.m));
        moments.forEach((name, mo) -> state.add(name + ".exp_avg_sq", mo.v));
    }

    @Override
    public void step(double baseLr) {
        long t = state.advance();
        try (NoGradGuard noGrad = new NoGradGuard()) {
            for (Map.Entry<String, Tensor> e : params.entrySet()) {
                Tensor p = e.getValue();
                Tensor g = p.grad();
                double lr = baseLr * lrScale.getOrDefault(e.getKey(), 1.0);
                if (!g.defined()) {
                    continue; // a parameter no micro-batch reached (frozen path): torch skips it too
                }
                if (weightDecay != 0 && !noDecay.contains(e.getKey())) {
                    p.mul_(new Scalar(1 - lr * weightDecay));
                }
                AdamMoments mo = moments.get(e.getKey());
                // the denominator is a temporary of the parameter's size: freed per parameter, not per step
                try (PointerScope perParameter = new PointerScope()) {
                    mo.update(g);
                    p.addcdiv_(mo.m, mo.torchDenominator(t, eps), new Scalar(-mo.torchStepSize(lr, t)));
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
        state.load(saved, numSteps, "adamw_torch");
    }
}
