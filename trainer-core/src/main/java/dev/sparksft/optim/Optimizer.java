package dev.sparksft.optim;

import java.util.Map;
import org.bytedeco.pytorch.Tensor;

/**
 * Updates the trainable parameters from their {@code .grad()} (already summed over micro-batches
 * and ranks and clipped). State is exposed as named tensors so that checkpoints can store it in
 * safetensors and a resumed run continues bit-for-bit.
 */
public interface Optimizer {
    /** One update of every parameter with learning rate {@code lr}. */
    void step(double lr);

    /** Number of updates made so far. */
    long numSteps();

    /** The state tensors by name ({@code <param>.exp_avg}, ...), sharing storage with the optimizer. */
    Map<String, Tensor> state();

    /** Restores {@link #state()} and {@link #numSteps()} from a checkpoint. */
    void load(Map<String, Tensor> state, long numSteps);
}
