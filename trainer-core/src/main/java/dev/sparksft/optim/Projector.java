package dev.sparksft.optim;

import dev.sparksft.UserError;
import org.bytedeco.pytorch.GeneratorOptional;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.T_TensorTensorTensor_T;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;

/**
 * The low-rank subspace GaLore and APOLLO move a 2-D gradient G (m, n) into, refreshed every
 * {@code interval} steps (galore_torch's GaLoreProjector and APOLLO's projectors):
 * <pre>
 *   right: P = Vh[:r]      (r, n)   low = G P^T  (m, r)   back = low P
 *   left:  P = U[:, :r]    (m, r)   low = P^T G  (r, n)   back = P low
 *   full:  P = U[:, :r], Q = Vh[:r]  low = P^T G Q^T (r, r)  back = P low Q
 * </pre>
 * from the SVD of the gradient at the refresh ({@code proj: svd}), or a Gaussian matrix with
 * entries N(0, 1/r) ({@code proj: random}, APOLLO), drawn from a generator seeded by
 * (seed, parameter, refresh) so that every rank draws the same one. {@code std} picks right
 * for m >= n and left otherwise (so the low-rank side is the smaller one); {@code reverse_std}
 * the opposite. The matrices are state: a resumed run continues with the same subspace.
 */
final class Projector {
    enum Side { RIGHT, LEFT, FULL }

    private final Side side;
    private final int rank;
    private final int interval;
    private final boolean random;
    private final long seed;
    /** (r, n) for RIGHT, (m, r) for LEFT and FULL. */
    final Tensor p;
    /** (r, n) for FULL, else null. */
    final Tensor q;

    Projector(Tensor param, int rank, int interval, String projType, boolean random, long seed) {
        long[] shape = param.sizes().vec().get();
        long m = shape[0];
        long n = shape[1];
        this.rank = (int) Math.min(rank, Math.min(m, n));
        this.interval = interval;
        this.random = random;
        this.seed = seed;
        this.side = switch (projType) {
            case "std" -> m >= n ? Side.RIGHT : Side.LEFT;
            case "reverse_std" -> m >= n ? Side.LEFT : Side.RIGHT;
            case "right" -> Side.RIGHT;
            case "left" -> Side.LEFT;
            case "full" -> Side.FULL;
            default -> throw new UserError("unknown projection type '" + projType + "'");
        };
        this.p = zeros(param, side == Side.RIGHT ? new long[] {this.rank, n} : new long[] {m, this.rank});
        this.q = side == Side.FULL ? zeros(param, new long[] {this.rank, n}) : null;
    }

    private static Tensor zeros(Tensor like, long[] shape) {
        return torch.zeros(shape, new TensorOptions(torch.ScalarType.Float)).to(like.device(), like.scalar_type());
    }

    /** Shape of the projected gradient of a (m, n) weight. */
    long[] lowRankShape(long[] shape) {
        return switch (side) {
            case RIGHT -> new long[] {shape[0], rank};
            case LEFT -> new long[] {rank, shape[1]};
            case FULL -> new long[] {rank, rank};
        };
    }

    /** G projected; refreshes the subspace first when {@code step} (0-based) is a multiple of the interval. */
    Tensor project(Tensor g, long step) {
        if (step % interval == 0) {
            refresh(g, step / interval);
        }
        return switch (side) {
            case RIGHT -> g.matmul(p.t());
            case LEFT -> p.t().matmul(g);
            case FULL -> p.t().matmul(g).matmul(q.t());
        };
    }

    /** A low-rank tensor back in the weight's (m, n) space. */
    Tensor projectBack(Tensor low) {
        return switch (side) {
            case RIGHT -> low.matmul(p);
            case LEFT -> p.matmul(low);
            case FULL -> p.matmul(low).matmul(q);
        };
    }

    private void refresh(Tensor g, long refresh) {
        if (random) {
            org.bytedeco.pytorch.Generator gen = dev.sparksft.runtime.Torch.generator(seed, refresh);
            Tensor drawn = torch.randn(p.sizes().vec().get(), new GeneratorOptional(gen), new TensorOptions(torch.ScalarType.Float))
                    .div_(new Scalar(Math.sqrt(rank)));
            p.copy_(drawn.to(p.device(), p.scalar_type()));
            return;
        }
        // SVD in float32 at least (bf16 gradients are widened, as galore_torch does)
        Tensor matrix = g.scalar_type().value == torch.ScalarType.Double.value ? g : g.to(torch.ScalarType.Float);
        T_TensorTensorTensor_T usv = torch.linalg_svd(matrix, false, new org.bytedeco.pytorch.StringViewOptional());
        Tensor u = usv.get0();   // (m, k)
        Tensor vh = usv.get2();  // (k, n)
        switch (side) {
            case RIGHT -> p.copy_(vh.narrow(0, 0, rank));
            case LEFT -> p.copy_(u.narrow(1, 0, rank));
            case FULL -> {
                p.copy_(u.narrow(1, 0, rank));
                q.copy_(vh.narrow(0, 0, rank));
            }
        }
    }
}
