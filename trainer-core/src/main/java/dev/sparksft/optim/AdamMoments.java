package dev.sparksft.optim;

import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Tensor;

/**
 * Adam's first and second moments of one tensor: a parameter, its gradient's low-rank projection
 * (GaLore, APOLLO), its masked entries (BAdam ratio mode) or its per-head view (Adam-mini).
 * <pre>
 *   m = lerp(m, g, 1 - b1)                   m, g: the same shape
 *   v = b2 v + (1 - b2) g^2                  v per weight: the shape of m
 *   v = b2 v + (1 - b2) mean_block(g^2)      v per block (Adam-mini): 0-d, or (blocks, 1) for m (blocks, block numel)
 * </pre>
 * and the two update directions in use, which place eps and the bias corrections differently:
 * <pre>
 *   torch.optim.AdamW:  p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)     (AdamW, Adam-mini)
 *   transformers:       p -= lr sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)       (GaLore, APOLLO, Muon's AdamW,
 *                                                                                        BAdam ratio mode)
 * </pre>
 * The tensors are the optimizer's state (registered in its {@link OptimizerState}) and are updated in place.
 */
final class AdamMoments {
    /** First moment, the shape of the gradient this is fed. */
    final Tensor m;
    /** Second moment: the shape of m, or one entry per block. */
    final Tensor v;
    private final double beta1;
    private final double beta2;

    AdamMoments(Tensor m, Tensor v, double beta1, double beta2) {
        this.m = m;
        this.v = v;
        this.beta1 = beta1;
        this.beta2 = beta2;
    }

    /** m = lerp(m, g, 1 - b1) ;  v = b2 v + (1 - b2) g^2, with g shaped like m and v. */
    void update(Tensor g) {
        m.lerp_(g, new Scalar(1 - beta1));
        v.mul_(new Scalar(beta2)).addcmul_(g, g, new Scalar(1 - beta2));
    }

    /**
     * Adam-mini's block form: m = lerp(m, g, 1 - b1) ;  v = b2 v + (1 - b2) mean_block(g^2). A 0-d v
     * is one block over all of g; a (blocks, 1) v has one block per row of g (blocks, block numel).
     */
    void updateBlocks(Tensor g) {
        m.lerp_(g, new Scalar(1 - beta1));
        Tensor meanSq = v.dim() == 0 ? g.square().mean()
                : g.square().mean(new long[] {1}, true, new ScalarTypeOptional());        // (blocks, 1)
        v.mul_(new Scalar(beta2)).add_(meanSq, new Scalar(1 - beta2));
    }

    /** torch.optim.AdamW's denominator after {@code t} updates: sqrt(v) / sqrt(1 - b2^t) + eps, shaped like v. */
    Tensor torchDenominator(long t, double eps) {
        return v.sqrt().div_(new Scalar(Math.sqrt(1 - Math.pow(beta2, t)))).add_(new Scalar(eps));
    }

    /** torch.optim.AdamW's step size: lr / (1 - b1^t), the factor of m / {@link #torchDenominator}. */
    double torchStepSize(double lr, long t) {
        return lr / (1 - Math.pow(beta1, t));
    }

    /** transformers' (and galore_torch's) direction: m / (sqrt(v) + eps), shaped like m. */
    Tensor hfDirection(double eps) {
        return m.div(v.sqrt().add_(new Scalar(eps)));
    }

    /** transformers' step size: lr sqrt(1 - b2^t) / (1 - b1^t), the factor of {@link #hfDirection}. */
    double hfStepSize(double lr, long t) {
        return lr * Math.sqrt(1 - Math.pow(beta2, t)) / (1 - Math.pow(beta1, t));
    }
}
