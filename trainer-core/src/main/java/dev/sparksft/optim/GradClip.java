package dev.sparksft.optim;

import java.util.Collection;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;

/** torch.nn.utils.clip_grad_norm_: scale all gradients so that their global L2 norm is at most maxNorm. */
public final class GradClip {
    private GradClip() {}

    /** @return the global gradient norm before clipping */
    public static double clip(Collection<Tensor> params, double maxNorm) {
        try (NoGradGuard noGrad = new NoGradGuard()) {
            double sumSquares = 0;
            for (Tensor p : params) {
                Tensor g = p.grad();
                if (g.defined()) {
                    double n = g.norm().item_double();
                    sumSquares += n * n;
                }
            }
            double total = Math.sqrt(sumSquares);
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
