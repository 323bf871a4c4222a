package dev.sparksft.optim;

import dev.sparksft.UserError;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;

/**
 * What an optimizer checkpoints: its state tensors by name ({@code <param>.exp_avg}, ...) in the
 * order they are saved, and the number of updates made. Each optimizer holds one, registers its
 * tensors once (they are updated in place afterwards) and answers {@link Optimizer#state},
 * {@link Optimizer#load} and {@link Optimizer#numSteps} from it.
 */
public final class OptimizerState {
    private final Map<String, Tensor> tensors = new LinkedHashMap<>();
    private long steps;

    /** Registers {@code t} as the state tensor {@code name}; returns it. */
    Tensor add(String name, Tensor t) {
        if (tensors.putIfAbsent(name, t) != null) {
            throw new IllegalStateException("optimizer state '" + name + "' registered twice");
        }
        return t;
    }

    /** The state tensors by name, sharing storage with the optimizer. */
    public Map<String, Tensor> tensors() {
        return new LinkedHashMap<>(tensors);
    }

    /** Number of updates made so far. */
    public long numSteps() {
        return steps;
    }

    /** Counts one more update; returns the new count t (1 for the first update). */
    long advance() {
        return ++steps;
    }

    /**
     * Copies a checkpoint's tensors into the live ones, requiring the same names and shapes, and
     * restores the update count.
     *
     * @param optimizer the optimizer's name for the error message (adamw_torch, GaLore, ...)
     */
    public void load(Map<String, Tensor> saved, long numSteps, String optimizer) {
        copyInto(tensors, saved, optimizer);
        this.steps = numSteps;
    }

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

    private static void copyInto(Map<String, Tensor> live, Map<String, Tensor> saved, String optimizer) {
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
