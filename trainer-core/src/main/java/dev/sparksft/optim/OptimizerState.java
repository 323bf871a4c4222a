package dev.sparksft.optim;

import dev.sparksft.UserError;
import java.util.Arrays;
import java.util.Map;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;

/** Checkpoint helpers shared by the optimizers: restoring state. */
public final class OptimizerState {
    private OptimizerState() {}

    /**
     * Keeps {@code t} alive past the enclosing {@link org.bytedeco.javacpp.PointerScope} (the trainer
     * runs each step in one): state an optimizer creates during a step must outlive the step.
     * Detaching releases the scope's reference, so one of our own is taken first.
     */
    static Tensor outliveScope(Tensor t) {
        org.bytedeco.javacpp.PointerScope scope = org.bytedeco.javacpp.PointerScope.getInnerScope();
        if (scope != null) {
            t.retainReference();
            scope.detach(t);
        }
        return t;
    }

    /** Copies saved tensors into the live state, requiring the same names and shapes. */
    static void copyInto(Map<String, Tensor> live, Map<String, Tensor> saved, String optimizer) {
        if (!live.keySet().equals(saved.keySet())) {
            throw new UserError("the checkpoint's optimizer state does not match this run's trainable "
                    + "parameters for " + optimizer + " (was finetuning_type or optim changed since the checkpoint?)");
        }
        try (NoGradGuard noGrad = new NoGradGuard()) {
            for (Map.Entry<String, Tensor> e : live.entrySet()) {
                Tensor s = saved.get(e.getKey());
                long[] want = e.getValue().sizes().vec().get();
                long[] got = s.sizes().vec().get();
                if (!Arrays.equals(want, got)) {
                    throw new UserError("optimizer state '" + e.getKey() + "' has shape "
                            + Arrays.toString(got) + " in the checkpoint but " + Arrays.toString(want) + " here");
                }
                e.getValue().copy_(s);
            }
        }
    }
}
