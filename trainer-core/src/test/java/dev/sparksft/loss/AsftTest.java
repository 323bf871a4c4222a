package dev.sparksft.loss;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.sparksft.runtime.Torch;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The ASFT sum against its closed form, computed here in float64 from LLaMA-Factory's formulas
 * (_dft_cross_entropy + asft_alpha x _kl_divergence, both as sums): {@code sum_t ce_t p_t + alpha
 * sum_t sum_v q_t(v) (log q_t(v) - log p_t(v))} over the labelled positions t. The loss computes in
 * float32: tolerance 1e-6 on sums of about 1 (a few float32 ulps of each of 22-term softmaxes).
 */
class AsftTest {
    static final int V = 22;
    static final int SEQ = 3;

    @BeforeAll
    static void loadTorch() {
        Torch.load(1);
    }

    /** (2, 3, V) policy logits: row b, position s, word i = sin(1 + i (s + 1) + 3 b). */
    static double[] policy() {
        return fill((b, s, i) -> Math.sin(1 + i * (s + 1) + 3 * b));
    }

    /** (2, 3, V) reference logits, a different distribution: 0.3 i at even positions, cos(i) at odd. */
    static double[] reference() {
        return fill((b, s, i) -> (s + b) % 2 == 0 ? 0.3 * i : Math.cos(i + b));
    }

    /** Labels (2, 3): row 0 scores positions 0 and 1 (labels 3, 7), row 1 position 1 only (label 5). */
    static final long[] LABELS = {-100, 3, 7, -100, -100, 5};

    interface Cell {
        double at(int b, int s, int i);
    }

    static double[] fill(Cell c) {
        double[] out = new double[2 * SEQ * V];
        for (int b = 0; b < 2; b++) {
            for (int s = 0; s < SEQ; s++) {
                for (int i = 0; i < V; i++) {
                    out[(b * SEQ + s) * V + i] = c.at(b, s, i);
                }
            }
        }
        return out;
    }

    static double[] softmax(double[] x, int b, int s) {
        double max = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < V; i++) {
            max = Math.max(max, x[(b * SEQ + s) * V + i]);
        }
        double z = 0;
        double[] p = new double[V];
        for (int i = 0; i < V; i++) {
            p[i] = Math.exp(x[(b * SEQ + s) * V + i] - max);
            z += p[i];
        }
        for (int i = 0; i < V; i++) {
            p[i] /= z;
        }
        return p;
    }

    /** The closed form: position s predicts labels[s + 1]. */
    static double expected(double[] pol, double[] ref, double alpha) {
        double dft = 0;
        double kl = 0;
        for (int b = 0; b < 2; b++) {
            for (int s = 0; s < SEQ - 1; s++) {
                long y = LABELS[b * SEQ + s + 1];
                if (y == -100) {
                    continue;
                }
                double[] p = softmax(pol, b, s);
                double[] q = softmax(ref, b, s);
                dft += -Math.log(p[(int) y]) * p[(int) y];
                for (int v = 0; v < V; v++) {
                    kl += q[v] * (Math.log(q[v]) - Math.log(p[v]));
                }
            }
        }
        return dft + alpha * kl;
    }

    static Tensor logits(double[] x) {
        return Tensor.create(x, 2, SEQ, V);
    }

    static Tensor labels() {
        return Tensor.create(LABELS, 2, SEQ);
    }

    @Test
    void sumMatchesTheClosedForm() {
        for (double alpha : new double[] {0.05, 0.1, 1.0}) {
            double got = new SftLoss(SftLoss.Kind.ASFT, alpha).sum(logits(policy()), labels(), logits(reference()))
                    .item_double();
            assertEquals(expected(policy(), reference(), alpha), got, 1e-6, "alpha " + alpha);
        }
        // the KL term is not negligible here, so the comparison sees it
        double klOnly = expected(policy(), reference(), 1.0) - expected(policy(), reference(), 0.0);
        assertEquals(true, klOnly > 0.1, "KL sum " + klOnly);
    }

    @Test
    void referenceEqualToTheModelGivesDftExactly() {
        Tensor dft = new SftLoss(SftLoss.Kind.DFT, 1).sum(logits(policy()), labels());
        Tensor asft = new SftLoss(SftLoss.Kind.ASFT, 0.1).sum(logits(policy()), labels(), logits(policy()));
        assertEquals(dft.item_double(), asft.item_double(), 0.0, "log q - log p is exactly 0, KL adds exactly 0");
        Tensor alphaZero = new SftLoss(SftLoss.Kind.ASFT, 0.0).sum(logits(policy()), labels(), logits(reference()));
        assertEquals(dft.item_double(), alphaZero.item_double(), 0.0);
    }

    @Test
    void unlabelledPositionsCarryNoKl() {
        // changing the reference where no label is scored (position 2 everywhere, row 1's position 0) changes nothing
        double[] ref = reference();
        double[] changed = ref.clone();
        for (int i = 0; i < V; i++) {
            changed[(0 * SEQ + 2) * V + i] = 7.0 * i;
            changed[(1 * SEQ + 0) * V + i] = -3.0 * i;
            changed[(1 * SEQ + 2) * V + i] = 2.0 * i;
        }
        SftLoss loss = new SftLoss(SftLoss.Kind.ASFT, 0.5);
        assertEquals(loss.sum(logits(policy()), labels(), logits(ref)).item_double(),
                loss.sum(logits(policy()), labels(), logits(changed)).item_double(), 0.0);
    }

    @Test
    void gradientIsDftsPlusAlphaTimesPMinusQ() {
        double alpha = 0.3;
        Tensor x = logits(policy());
        x.set_requires_grad(true);
        new SftLoss(SftLoss.Kind.ASFT, alpha).sum(x, labels(), logits(reference())).backward();
        Tensor grad = x.grad();
        double[] pol = policy();
        double[] ref = reference();
        double worst = 0;
        for (int b = 0; b < 2; b++) {
            for (int s = 0; s < SEQ; s++) {
                long y = s < SEQ - 1 ? LABELS[b * SEQ + s + 1] : -100;
                double[] p = softmax(pol, b, s);
                double[] q = softmax(ref, b, s);
                for (int v = 0; v < V; v++) {
                    // d(ce sg(p_y))/dz_v = sg(p_y) (p_v - [v = y]); d KL/dz_v = p_v - q_v (q is a constant)
                    double want = y == -100 ? 0
                            : p[(int) y] * (p[v] - (v == y ? 1 : 0)) + alpha * (p[v] - q[v]);
                    worst = Math.max(worst, Math.abs(want - grad.get(b).get(s).get(v).item_double()));
                }
            }
        }
        assertEquals(0, worst, 1e-6, "largest gradient error");
    }

    @Test
    void theReferenceIsRequiredExactlyForAsft() {
        assertThrows(IllegalStateException.class,
                () -> new SftLoss(SftLoss.Kind.ASFT, 0.1).sum(logits(policy()), labels()));
        assertThrows(IllegalStateException.class,
                () -> new SftLoss(SftLoss.Kind.DFT, 1).sum(logits(policy()), labels(), logits(reference())));
    }
}
