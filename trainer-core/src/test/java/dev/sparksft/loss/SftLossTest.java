package dev.sparksft.loss;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.sparksft.runtime.Torch;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Two labelled tokens over a 22-word vocabulary; expected sums computed by hand (numpy, float64)
 * from LLaMA-Factory's dft/eaft formulas; the loss computes in float32, hence the 1e-6 tolerance.
 */
class SftLossTest {
    static final int V = 22;

    @BeforeAll
    static void loadTorch() {
        Torch.load(1);
    }

    /** logits (1, 3, V): position 0 = 0.1 i, position 1 = sin(i), position 2 unused; labels [-100, 3, 7]. */
    static Tensor[] example() {
        double[] logits = new double[3 * V];
        for (int i = 0; i < V; i++) {
            logits[i] = 0.1 * i;
            logits[V + i] = Math.sin(i);
            logits[2 * V + i] = 5.0; // predicts past the end: never scored
        }
        return new Tensor[] {Tensor.create(logits, 1, 3, V), Tensor.create(new long[] {-100, 3, 7}, 1, 3)};
    }

    @Test
    void crossEntropyDftAndEaft() {
        Tensor[] e = example();
        assertEquals(6.776318858156987, new SftLoss(SftLoss.Kind.CROSS_ENTROPY, 1).sum(e[0], e[1]).item_double(), 1e-6);
        assertEquals(0.24812061805696764, new SftLoss(SftLoss.Kind.DFT, 1).sum(e[0], e[1]).item_double(), 1e-6);
        assertEquals(6.415750438013579, new SftLoss(SftLoss.Kind.EAFT, 1.0).sum(e[0], e[1]).item_double(), 1e-6);
        assertEquals(6.0743872792857, new SftLoss(SftLoss.Kind.EAFT, 2.0).sum(e[0], e[1]).item_double(), 1e-6);
        assertEquals(2, CausalLmLoss.countTargets(e[1]));
    }

    @Test
    void dftWeightIsDetached() {
        Tensor[] e = example();
        Tensor logits = e[0].clone();
        logits.set_requires_grad(true);
        new SftLoss(SftLoss.Kind.DFT, 1).sum(logits, e[1]).backward();
        // d/dlogit of ce * sg(p) = sg(p) * (softmax - onehot): at the label, p * (p - 1)
        double[] row = new double[V];
        for (int i = 0; i < V; i++) {
            row[i] = 0.1 * i;
        }
        double max = row[V - 1];
        double z = 0;
        for (double r : row) {
            z += Math.exp(r - max);
        }
        double p = Math.exp(row[3] - max) / z;
        assertEquals(p * (p - 1), logits.grad().get(0).get(0).get(3).item_double(), 1e-6);
    }
}
