package dev.sparksft.runtime;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Autocast's bf16 weight copies kept for a step: the same gradients as casting per micro-batch
 * (bit for bit: the copies hold the same values), really kept (a weight changed in place inside
 * the scope is still seen through its old copy), and dropped when the scope closes.
 */
class StepCastsTest {
    @BeforeAll
    static void load() {
        Torch.load(1);
    }

    /** y = linear(x, W) = x W^T under bf16 autocast, summed: the weight is a float32 leaf, as a master weight is. */
    private static Tensor forward(Tensor x, Tensor w) {
        try (Autocast region = Autocast.cpuBf16(true)) {
            return torch.linear(x, w).sum().to(torch.ScalarType.Float);   // as CausalLm.Proj applies a weight
        }
    }

    private static float[] floats(Tensor t) {
        Tensor c = t.to(torch.ScalarType.Float).contiguous();
        float[] out = new float[(int) c.numel()];
        new FloatPointer(c.data_ptr_float()).get(out);
        return out;
    }

    private static float[] accumulatedGradient(boolean keep) {
        torch.manual_seed(3);
        Tensor w = torch.randn(16, 8).set_requires_grad(true);
        Tensor x1 = torch.randn(4, 8);
        Tensor x2 = torch.randn(4, 8);
        try (Autocast.StepCasts casts = keep ? Autocast.StepCasts.keep() : Autocast.StepCasts.none()) {
            forward(x1, w).backward();   // micro-batch 1
            forward(x2, w).backward();   // micro-batch 2: through the kept copy when keep
        }
        return floats(w.grad());
    }

    @Test
    void keptCopiesGiveTheGradientsOfCastingPerMicroBatch() {
        float[] perMicroBatch = accumulatedGradient(false);
        float[] perStep = accumulatedGradient(true);
        assertArrayEquals(perMicroBatch, perStep, 0f);
        assertNotEquals(0f, perStep[0]);
    }

    @Test
    void copiesAreKeptInsideTheScopeAndDroppedWhenItCloses() {
        torch.manual_seed(4);
        Tensor w = torch.randn(16, 8).set_requires_grad(true);
        Tensor x = torch.randn(4, 8);
        double before;
        double inside;
        try (Autocast.StepCasts casts = Autocast.StepCasts.keep()) {
            before = forward(x, w).item_double();
            try (NoGradGuard noGrad = new NoGradGuard()) {
                w.add_(new Scalar(1.0));   // what an optimizer step does; never inside the scope in training
            }
            inside = forward(x, w).item_double();
        }
        double after = forward(x, w).item_double();
        assertEquals(before, inside, 0.0, "the second region did not reuse the kept copy");
        assertNotEquals(before, after, "the scope's close did not drop the copies");

        // without the scope each region casts anew
        double fresh = forward(x, w).item_double();
        try (NoGradGuard noGrad = new NoGradGuard()) {
            w.add_(new Scalar(1.0));
        }
        assertNotEquals(fresh, forward(x, w).item_double());
    }
}
