package dev.sparksft.optim;

import dev.sparksft.model.ModelLayout;
import java.util.LinkedHashMap;
import java.util.Map;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

/**
 * Adam-mini (zyushun/Adam-mini, the partition LLaMA-Factory uses): one second moment per block
 * instead of per weight.
 * <ul>
 *   <li>embeddings and the LM head: plain Adam (v per weight);</li>
 *   <li>q_proj and k_proj: one v per attention head, the mean of g^2 over the head's
 *       head_dim x hidden weights;</li>
 *   <li>every other tensor: one v, the mean of g^2 over the tensor.</li>
 * </ul>
 * <pre>
 *   p *= 1 - lr wd   (no decay for names containing "norm")
 *   m = lerp(m, g, 1 - b1) ;  v_block = b2 v_block + (1 - b2) mean_block(g^2)
 *   p -= lr / (1 - b1^t) * m / (sqrt(v_block) / sqrt(1 - b2^t) + eps)
 * </pre>
 */
public final class AdamMini implements Optimizer {
    private final Map<String, Tensor> params;
    private final Map<String, Long> headNumel = new LinkedHashMap<>();   // q/k: weights per head
    private final double beta1;
    private final double beta2;
    private final double eps;
    private final double weightDecay;
    private final Map<String, Tensor> m = new LinkedHashMap<>();
    private final Map<String, Tensor> v = new LinkedHashMap<>();     // full, (heads, 1) or 0-d
    private long t;

    /** @param numelPerHead weights per attention head in q_proj/k_proj (head_dim x hidden_size) */
    public AdamMini(Map<String, Tensor> params, long numelPerHead, double beta1, double beta2, double eps,
                    double weightDecay) {
        this.params = new LinkedHashMap<>(params);
        this.beta1 = beta1;
        this.beta2 = beta2;
        this.eps = eps;
        this.weightDecay = weightDecay;
        params.forEach((name, p) -> {
            m.put(name, torch.zeros_like(p));
            ModelLayout.SecondMoments blocks = ModelLayout.adamMiniBlocks(name);
            if (blocks == ModelLayout.SecondMoments.PER_WEIGHT) {
                v.put(name, torch.zeros_like(p));
            } else if (blocks == ModelLayout.SecondMoments.PER_HEAD) {
                if (p.numel() % numelPerHead != 0) {
                    throw new IllegalStateException(name + " has " + p.numel() + " weights, not a multiple of "
                            + numelPerHead + " per head");
                }
                headNumel.put(name, numelPerHead);
                v.put(name, torch.zeros(p.numel() / numelPerHead, 1).to(p.device(), p.scalar_type()));
            } else {
                v.put(name, torch.zeros(new long[0]).to(p.device(), p.scalar_type()));
            }
        });
    }

    @Override
    public void step(double lr) {
        t++;
        double bias1 = 1 - Math.pow(beta1, t);
        double sqrtBias2 = Math.sqrt(1 - Math.pow(beta2, t));
        try (NoGradGuard noGrad = new NoGradGuard()) {
            for (Map.Entry<String, Tensor> e : params.entrySet()) {
                String name = e.getKey();
                Tensor p = e.getValue();
                Tensor g = p.grad();
                if (!g.defined()) {
                    continue;
                }
                if (weightDecay > 0 && ModelLayout.adamMiniDecays(name)) {
                    p.mul_(new Scalar(1 - lr * weightDecay));
                }
                Tensor mm = m.get(name);
                Tensor vv = v.get(name);
                mm.lerp_(g, new Scalar(1 - beta1));
                Long perHead = headNumel.get(name);
                if (ModelLayout.adamMiniBlocks(name) == ModelLayout.SecondMoments.PER_WEIGHT) {
                    vv.mul_(new Scalar(beta2)).addcmul_(g, g, new Scalar(1 - beta2));
                    Tensor h = vv.sqrt().div_(new Scalar(sqrtBias2)).add_(new Scalar(eps));
                    p.addcdiv_(mm, h, new Scalar(-lr / bias1));
                    continue;
                }
                Tensor meanSq = perHead != null
                        ? g.reshape(-1, perHead).square().mean(new long[] {1}, true, new org.bytedeco.pytorch.ScalarTypeOptional())  // (heads, 1)
                        : g.square().mean();                                                 // 0-d
                vv.mul_(new Scalar(beta2)).add_(meanSq, new Scalar(1 - beta2));
                Tensor h = vv.sqrt().div(new Scalar(sqrtBias2)).add_(new Scalar(eps));
                Tensor update = perHead != null
                        ? mm.reshape(-1, perHead).div(h).reshape(p.sizes().vec().get())
                        : mm.div(h);
                p.add_(update, new Scalar(-lr / bias1));
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
        m.forEach((n, x) -> s.put(n + ".m", x));
        v.forEach((n, x) -> s.put(n + ".v", x));
        return s;
    }

    @Override
    public void load(Map<String, Tensor> state, long numSteps) {
        OptimizerState.copyInto(state(), state, "Adam-mini");
        this.t = numSteps;
    }
}
