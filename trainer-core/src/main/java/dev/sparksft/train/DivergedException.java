package dev.sparksft.train;

/**
 * Training produced a non-finite loss or gradient norm: the run stops before the optimizer step,
 * so no NaN or infinite weight is ever applied or saved (the newest checkpoint, if any, is the
 * last good state). A failed run (exit 1), not a configuration mistake: the same settings may
 * train on other data or with another learning rate.
 */
public final class DivergedException extends RuntimeException {
    public DivergedException(long step, double loss, double gradNorm, double learningRate) {
        super(String.format("training diverged at step %d: loss %s, grad_norm %s; nothing of this step was applied "
                        + "or saved (resume from the newest checkpoint, if any). Lower learning_rate (now %s), check "
                        + "the data of this step, or set max_grad_norm", step, loss, gradNorm, learningRate));
    }
}
