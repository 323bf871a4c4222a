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
 * Muon (LLaMA-Factory's third_party/muon): SGD with Nesterov momentum whose update for each 2-D
 * hidden weight is orthogonalised by five quintic Newton-Schulz iterations in bfloat16, and
 * AdamW for everything else (embeddings, the LM head, norms, biases):
 * <pre>
 *   Muon:  b = mu b + G ;  g = G + mu b ;  U = NS5(g)
 *          p *= 1 - lr wd ;  p -= lr * 0.2 sqrt(max(A, B)) * U        (A x B = the weight's shape)
 *   AdamW: m = lerp(m, G, 1 - b1) ;  v = b2 v + (1 - b2) G^2        ({@link AdamMoments}, transformers' form)
 *          p *= 1 - lr wd ;  p -= lr sqrt(1 - b2^t) / (1 - b1^t) * m / (eps + sqrt(v))
 * </pre>
 * As in the reference, weight decay applies to every parameter, norms included.
 */
public final class Muon implements Optimizer {
    static final double MOMENTUM = 0.95;
    static final int NS_STEPS = 5;
    private static final double A = 3.4445;
    private static final double B = -4.7750;
    private static final double C = 2.0315;

    private final Map<String, Tensor> params;
    private final Set<String> muonParams;
    private final double eps;
    private final double weightDecay;
    private final Map<String, Tensor> momentum = new LinkedHashMap<>();        // Muon's, shaped like the weight
    private final Map<String, AdamMoments> moments = new LinkedHashMap<>();    // AdamW's, shaped like the parameter
    private final OptimizerState state = new OptimizerState();

    /** @param muonParams the 2-D hidden weights Muon updates ({@code ModelLayout.isHiddenMatrix}); the rest get AdamW */
    public Muon(Map<String, Tensor> params, Set<String> muonParams, double beta1, double beta2, double eps,
                double weightDecay) {
        this.params = new LinkedHashMap<>(params);
        this.muonParams = Set.copyOf(muonParams);
        this.eps = eps;
        this.weightDecay = weightDecay;
        params.forEach((name, p) -> {
            if (muonParams.contains(name)) {
                momentum.put(name, torch.zeros_like(p));
            } else {
                moments.put(name, new AdamMoments(torch.zeros_like(p), torch.zeros_like(p), beta1, beta2));
            }
        });
        momentum.forEach((n, x) -> state.add(n + ".momentum_buffer", x));
        moments.forEach((n, mo) -> state.add(n + ".moment1", mo.m));
        moments.forEach((n, mo) -> state.add(n + ".moment2", mo.v));
    }

    @Override
    public void step(double lr) {
        long t = state.advance();
        try (NoGradGuard noGrad = new NoGradGuard()) {
            for (Map.Entry<String, Tensor> e : params.entrySet()) {
                // temporaries of the parameter's size are freed per parameter, not at the end of the step
                try (PointerScope perParameter = new PointerScope()) {
                    Tensor p = e.getValue();
                    Tensor g = p.grad();
                    if (!g.defined()) {
                        continue;
                    }
                    p.mul_(new Scalar(1 - lr * weightDecay));
                    if (muonParams.contains(e.getKey())) {
                        Tensor buf = momentum.get(e.getKey());
                        buf.mul_(new Scalar(MOMENTUM)).add_(g);
                        Tensor nesterov = g.add(buf, new Scalar(MOMENTUM));
                        Tensor u = newtonSchulz5(nesterov);
                        double adjusted = lr * 0.2 * Math.sqrt(Math.max(p.size(0), p.size(1)));
                        p.add_(u.to(p.scalar_type()), new Scalar(-adjusted));
                    } else {
                        AdamMoments mo = moments.get(e.getKey());
                        mo.update(g);
                        p.add_(mo.hfDirection(eps), new Scalar(-mo.hfStepSize(lr, t)));
                    }
                }
            }
        }
    }

    /**
     * zeropower_via_newtonschulz5: an approximately orthogonal matrix U S' V^T (S' about 1) from
     * G = U S V^T, in bfloat16; works on the wide orientation (rows <= columns).
     */
    static Tensor newtonSchulz5(Tensor g) {
        Tensor x = g.to(torch.ScalarType.BFloat16);
        boolean tall = g.size(0) > g.size(1);
        if (tall) {
            x = x.t();
        }
        x = x.div(x.norm().add(new Scalar(1e-7)));
        for (int i = 0; i < NS_STEPS; i++) {
            Tensor a = x.matmul(x.t());                                         // (rows, rows)
            Tensor b = a.mul(new Scalar(B)).add(a.matmul(a).mul(new Scalar(C)));
            x = x.mul(new Scalar(A)).add(b.matmul(x));
        }
        return tall ? x.t() : x;
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
        state.load(saved, numSteps, "Muon");
    }
}
