package dev.sparksft.optim;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;

/** torch.optim.SGD as Hugging Face's {@code optim: sgd} builds it: no momentum, L2 weight decay in the gradient. */
public final class Sgd implements Optimizer {
    private final Map<String, Tensor> params;
    private final Set<String> noDecay;
    private final double weightDecay;
    private final OptimizerState state = new OptimizerState();   // no tensors: plain SGD keeps none

    public Sgd(Map<String, Tensor> params, Set<String> noDecay, double weightDecay) {
        this.params = new LinkedHashMap<>(params);
        this.noDecay = Set.copyOf(noDecay);
        this.weightDecay = weightDecay;
    }

    @Override
    public void step(double lr) {
        state.advance();
        try (NoGradGuard noGrad = new NoGradGuard()) {
            for (Map.Entry<String, Tensor> e : params.entrySet()) {
                Tensor p = e.getValue();
                Tensor g = p.grad();
                if (!g.defined()) {
                    continue;
                }
                if (weightDecay != 0 && !noDecay.contains(e.getKey())) {
                    g = g.add(p, new Scalar(weightDecay)); // g + wd * p
                }
                p.sub_(g, new Scalar(lr));
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
        state.load(saved, numSteps, "sgd");
    }
}
