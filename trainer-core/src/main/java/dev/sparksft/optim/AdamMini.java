package dev.sparksft.optim;

import dev.sparksft.model.ModelLayout;
import java.util.LinkedHashMap;
import java.util.Map;
import org.bytedeco.javacpp.PointerScope;
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
    private final double eps;
    private final double weightDecay;
    /**
     * Per parameter: m shaped like it and v per weight (embedding, head); m viewed as (heads,
     * head_dim x hidden) and v (heads, 1) (q/k); or m shaped like it and a 0-d v (the rest).
     */
    private final Map<String, AdamMoments> moments = new LinkedHashMap<>();
    private final Map<String, ModelLayout.SecondMoments> blocks = new LinkedHashMap<>();
    private final OptimizerState state = new OptimizerState();

    /** @param numelPerHead weights per attention head in q_proj/k_proj (head_dim x hidden_size) */
    public AdamMini(Map<String, Tensor> params, long numelPerHead, double beta1, double beta2, double eps,
                    double weightDecay) {
        this.params = new LinkedHashMap<>(params);
        this.eps = eps;
        this.weightDecay = weightDecay;
        Map<String, Tensor> m = new LinkedHashMap<>();
        Map<String, Tensor> v = new LinkedHashMap<>();
        params.forEach((name, p) -> {
            Tensor mm = torch.zeros_like(p);
            m.put(name, mm);
            blocks.put(name, ModelLayout.adamMiniBlocks(name));
            switch (blocks.get(name)) {
                case PER_WEIGHT -> {
                    v.put(name, torch.zeros_like(p));
                    moments.put(name, new AdamMoments(mm, v.get(name), beta1, beta2));
                }
                case PER_HEAD -> {
                    if (p.numel() % numelPerHead != 0) {
                        throw new IllegalStateException(name + " has " + p.numel() + " weights, not a multiple of "
                                + numelPerHead + " per head");
                    }
                    v.put(name, torch.zeros(p.numel() / numelPerHead, 1).to(p.device(), p.scalar_type()));
                    moments.put(name, new AdamMoments(mm.view(-1, numelPerHead), v.get(name), beta1, beta2));
                }
                case PER_TENSOR -> {
                    v.put(name, torch.zeros(new long[0]).to(p.device(), p.scalar_type()));
                    moments.put(name, new AdamMoments(mm, v.get(name), beta1, beta2));
                }
            }
        });
        m.forEach((n, x) -> state.add(n + ".m", x));
        v.forEach((n, x) -> state.add(n + ".v", x));
    }

    @Override
    public void step(double lr) {
        long t = state.advance();
        try (NoGradGuard noGrad = new NoGradGuard()) {
            for (Map.Entry<String, Tensor> e : params.entrySet()) {
                // temporaries of the parameter's size are freed per parameter, not at the end of the step
                try (PointerScope perParameter = new PointerScope()) {
                    String name = e.getKey();
                    Tensor p = e.getValue();
                    Tensor g = p.grad();
                    if (!g.defined()) {
                        continue;
                    }
                    if (weightDecay > 0 && ModelLayout.adamMiniDecays(name)) {
                        p.mul_(new Scalar(1 - lr * weightDecay));
                    }
                    AdamMoments mo = moments.get(name);
                    if (blocks.get(name) == ModelLayout.SecondMoments.PER_WEIGHT) {   // plain torch AdamW
                        mo.update(g);
                        p.addcdiv_(mo.m, mo.torchDenominator(t, eps), new Scalar(-mo.torchStepSize(lr, t)));
                        continue;
                    }
                    mo.updateBlocks(g.reshape(mo.m.sizes().vec().get()));   // (heads, per head) or p's shape
                    Tensor update = mo.m.div(mo.torchDenominator(t, eps)).reshape(p.sizes().vec().get());
                    p.add_(update, new Scalar(-mo.torchStepSize(lr, t)));
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
        state.load(saved, numSteps, "Adam-mini");
    }
}
