package dev.sparksft.optim;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
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
    private final double beta1;
    private final double beta2;
    private final double eps;
    private final double weightDecay;
    private final Map<String, Tensor> expAvg = new LinkedHashMap<>();
    private final Map<String, Tensor> expAvgSq = new LinkedHashMap<>();
    private long t;

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
        this.beta1 = beta1;
        this.beta2 = beta2;
        this.eps = eps;
        this.weightDecay = weightDecay;
        params.forEach((name, p) -> {
            expAvg.put(name, torch.zeros_like(p));
            expAvgSq.put(name, torch.zeros_like(p));
        });
    }

    @Override
    public void step(double baseLr) {
        t++;
        double bias1 = 1 - Math.pow(beta1, t);
        double sqrtBias2 = Math.sqrt(1 - Math.pow(beta2, t));
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
                Tensor m = expAvg.get(e.getKey());
                Tensor v = expAvgSq.get(e.getKey());
                m.lerp_(g, new Scalar(1 - beta1));
                v.mul_(new Scalar(beta2)).addcmul_(g, g, new Scalar(1 - beta2));
                Tensor denom = v.sqrt().div_(new Scalar(sqrtBias2)).add_(new Scalar(eps));
                p.addcdiv_(m, denom, new Scalar(-lr / bias1));
            }
        }
    }

    @Override
    public long numSteps() {
        return t;
    }

    @Override
    public Map<String, Tensor> state() {
        Map<String, Tensor> s = new LinkedHashMap<>();
        expAvg.forEach((n, x) -> s.put(n + ".exp_avg", x));
        expAvgSq.forEach((n, x) -> s.put(n + ".exp_avg_sq", x));
        return s;
    }

    @Override
    public void load(Map<String, Tensor> state, long numSteps) {
        OptimizerState.copyInto(state(), state, "adamw_torch");
        this.t = numSteps;
    }
}
