package dev.sparksft.optim;

import java.util.Collection;
import java.util.function.DoubleUnaryOperator;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;

/** torch.nn.utils.clip_grad_norm_: scale all gradients so that their global L2 norm is at most maxNorm. */
public final class GradClip {
    private GradClip() {}

    /** @return the global gradient norm before clipping */
    public static double clip(Collection<Tensor> params, double maxNorm) {
        return clip(params, maxNorm, x -> x);
    }

    /**
     * Clipping over gradients sharded across ranks (ZeRO stage 2): {@code params} are this rank's
     * share, {@code sumOverRanks} adds the ranks' sums of squares (float64), so every rank scales its
     * own gradients by the one global coefficient.
     *
     * @return the global gradient norm before clipping
     */
    public static double clip(Collection<Tensor> params, double maxNorm, DoubleUnaryOperator sumOverRanks) {
        try (NoGradGuard noGrad = new NoGradGuard()) {
            double sumSquares = 0;
            for (Tensor p : params) {
                Tensor g = p.grad();
                if (g.defined()) {
                    double n = g.norm().item_double();
                    sumSquares += n * n;
                }
            }
            double total = Math.sqrt(sumOverRanks.applyAsDouble(sumSquares));
            double coef = maxNorm / (total + 1e-6);
            if (maxNorm > 0 && coef < 1) {
                for (Tensor p : params) {
                    Tensor g = p.grad();
                    if (g.defined()) {
                        g.mul_(new Scalar(coef));
                    }
                }
            }
            return total;
        }
    }
}
