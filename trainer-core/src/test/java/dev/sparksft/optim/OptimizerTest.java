package dev.sparksft.optim;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparksft.model.ModelLayout;
import dev.sparksft.runtime.Torch;
import java.util.Map;
import java.util.Set;
import org.bytedeco.javacpp.DoublePointer;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Two updates of a 2x3 weight against values computed by hand from torch's update rules
 * (numpy, float64): lr 0.1, betas (0.9, 0.999), eps 1e-8, weight decay 0.01.
 */
class OptimizerTest {
    static final double[] G1 = {0.1, -0.2, 0.3, -0.4, 0.5, -0.6};
    static final double[] G2 = {0.2, 0.2, 0.2, -0.1, -0.1, -0.1};

    @BeforeAll
    static void loadTorch() {
        Torch.load(1);
    }

    static Tensor weight() {
        Tensor w = Tensor.create(new double[] {1, 2, 3, 4, 5, 6}, 2, 3);
        w.set_requires_grad(true);
        return w;
    }

    /** Makes w.grad() == g through autograd: d/dw sum(w * g) = g. */
    static void setGrad(Tensor w, double[] g) {
        if (w.grad().defined()) {
            w.grad().zero_();
        }
        w.mul(Tensor.create(g, 2, 3)).sum().backward();
    }

    static double[] values(Tensor t) {
        Tensor c = t.detach().to(ScalarType.Double).contiguous();
        double[] out = new double[6];
        new DoublePointer(c.data_ptr()).capacity(6).get(out);
        return out;
    }

    static void twoSteps(Optimizer opt, Tensor w) {
        setGrad(w, G1);
        opt.step(0.1);
        setGrad(w, G2);
        opt.step(0.1);
    }

    static void assertClose(double[] want, double[] got) {
        for (int i = 0; i < want.length; i++) {
            assertEquals(want[i], got[i], 1e-12, "element " + i);
        }
    }

    @Test
    void adamWMatchesTorchUpdate() {
        Tensor w = weight();
        AdamW opt = new AdamW(Map.of("w", w), Set.of(), 0.9, 0.999, 1e-8, 0.01);
        twoSteps(opt, w);
        assertClose(new double[] {0.8015828135112532, 2.090638837373421, 2.7970677943267694, 4.174963748020494,
                4.839002395697324, 6.166238731339358}, values(w));
        assertEquals(2, opt.numSteps());
        assertEquals(Set.of("w.exp_avg", "w.exp_avg_sq"), opt.state().keySet());
    }

    @Test
    void sgdMatchesTorchUpdate() {
        Tensor w = weight();
        twoSteps(new Sgd(Map.of("w", w), Set.of(), 0.01), w);
        assertClose(new double[] {0.968011, 1.995982, 2.944033, 4.041964, 4.950055, 6.057946}, values(w));
    }

    @Test
    void noDecayForBiasesAndNorms() {
        assertFalse(ModelLayout.decays("model.layers.0.self_attn.q_proj.bias"));
        assertFalse(ModelLayout.decays("model.layers.0.input_layernorm.weight"));
        assertFalse(ModelLayout.decays("model.norm.weight"));
        assertFalse(ModelLayout.decays("model.layers.3.self_attn.q_norm.weight"));
        assertTrue(ModelLayout.decays("model.layers.0.mlp.up_proj.weight"));
        assertTrue(ModelLayout.decays("model.embed_tokens.weight"));
    }
}
