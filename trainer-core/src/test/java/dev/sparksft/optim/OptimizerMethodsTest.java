package dev.sparksft.optim;

import static dev.sparksft.optim.OptimizerTest.G1;
import static dev.sparksft.optim.OptimizerTest.G2;
import static dev.sparksft.optim.OptimizerTest.setGrad;
import static dev.sparksft.optim.OptimizerTest.twoSteps;
import static dev.sparksft.optim.OptimizerTest.values;
import static dev.sparksft.optim.OptimizerTest.weight;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparksft.model.ModelLayout;
import dev.sparksft.runtime.Torch;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * GaLore, APOLLO, Muon, Adam-mini, LoRA+ and BAdam on the 2x3 weight [[1,2,3],[4,5,6]] for two
 * steps (gradients G1, G2 of {@link OptimizerTest}; lr 0.1, betas (0.9, 0.999), eps 1e-8, weight
 * decay 0.01), each against a reference written here in plain double arithmetic from the
 * reference implementations' formulas, with no libtorch call. Tolerance 1e-10 in float64, except
 * Muon, whose Newton-Schulz runs in bfloat16 (the reference rounds to bfloat16 where libtorch
 * does; tolerance 5e-4, about 3 bfloat16 ulps of the update).
 */
class OptimizerMethodsTest {
    static final double LR = 0.1;
    static final double B1 = 0.9;
    static final double B2 = 0.999;
    static final double EPS = 1e-8;
    static final double WD = 0.01;

    @BeforeAll
    static void loadTorch() {
        Torch.load(1);
    }

    static double[][] w0() {
        return new double[][] {{1, 2, 3}, {4, 5, 6}};
    }

    static double[][] grad(double[] g) {
        return new double[][] {{g[0], g[1], g[2]}, {g[3], g[4], g[5]}};
    }

    static void assertMatrix(double[][] want, double[] got, double tol) {
        for (int i = 0; i < 2; i++) {
            for (int j = 0; j < 3; j++) {
                assertEquals(want[i][j], got[i * 3 + j], tol, "element (" + i + ", " + j + ")");
            }
        }
    }

    /** The top left singular vector of a 2x3 G: the top eigenvector of G G^T (2x2, closed form). */
    static double[] topLeftSingular(double[][] g) {
        double a = 0, b = 0, c = 0;
        for (int j = 0; j < 3; j++) {
            a += g[0][j] * g[0][j];
            b += g[0][j] * g[1][j];
            c += g[1][j] * g[1][j];
        }
        double lambda = (a + c) / 2 + Math.sqrt((a - c) * (a - c) / 4 + b * b);
        double[] u = {b, lambda - a};
        double n = Math.hypot(u[0], u[1]);
        return new double[] {u[0] / n, u[1] / n};
    }

    /** galore_torch / apollo_torch with an SVD projection, rank 1: G is 2x3, so std projects from the left. */
    static double[][] projectedReference(boolean apollo, double scale, int steps) {
        return projectedReference(apollo, scale, steps, true);
    }

    static double[][] projectedReference(boolean apollo, double scale, int steps, boolean channel) {
        double[][] p = w0();
        double[] u = topLeftSingular(grad(G1));           // refreshed at step 0, kept at step 1 (interval 2)
        double[] m = new double[3];
        double[] v = new double[3];
        double lastNorm = 0;
        double[][] grads = {G1, G2};
        for (int t = 1; t <= steps; t++) {
            double[][] g = grad(grads[t - 1]);
            double[] r = new double[3];                   // R = u^T G, (1, 3)
            for (int j = 0; j < 3; j++) {
                r[j] = u[0] * g[0][j] + u[1] * g[1][j];
            }
            double[] n = new double[3];
            for (int j = 0; j < 3; j++) {
                m[j] = B1 * m[j] + (1 - B1) * r[j];
                v[j] = B2 * v[j] + (1 - B2) * r[j] * r[j];
                n[j] = m[j] / (Math.sqrt(v[j]) + EPS);
            }
            double stepSize = LR * Math.sqrt(1 - Math.pow(B2, t)) / (1 - Math.pow(B1, t));
            double[][] update = new double[2][3];
            if (!apollo) {                                // GaLore: scale * u N
                for (int i = 0; i < 2; i++) {
                    for (int j = 0; j < 3; j++) {
                        update[i][j] = scale * u[i] * n[j];
                    }
                }
            } else {                                      // APOLLO: G scaled per column by |N_j| / |R_j| (or by ||N|| / ||R||)
                double nNorm = Math.sqrt(n[0] * n[0] + n[1] * n[1] + n[2] * n[2]);
                double rNorm = Math.sqrt(r[0] * r[0] + r[1] * r[1] + r[2] * r[2]);
                double norm = 0;
                for (int i = 0; i < 2; i++) {
                    for (int j = 0; j < 3; j++) {
                        update[i][j] = g[i][j] * (channel ? Math.abs(n[j]) / (Math.abs(r[j]) + 1e-8) : nNorm / (rNorm + 1e-8));
                        norm += update[i][j] * update[i][j];
                    }
                }
                norm = Math.sqrt(norm);
                double limiter = 1;
                if (t > 1) {
                    limiter = Math.max(norm / (lastNorm + 1e-8), 1.01) / 1.01;
                }
                lastNorm = norm / limiter;
                for (int i = 0; i < 2; i++) {
                    for (int j = 0; j < 3; j++) {
                        update[i][j] = update[i][j] / limiter * Math.sqrt(scale);
                    }
                }
            }
            for (int i = 0; i < 2; i++) {
                for (int j = 0; j < 3; j++) {
                    p[i][j] -= stepSize * update[i][j];
                    p[i][j] -= LR * WD * p[i][j];          // decay after the update
                }
            }
        }
        return p;
    }

    static ProjectedAdamW projected(Tensor w, ProjectedAdamW.Kind kind, double scale) {
        return new ProjectedAdamW(Map.of("w", w), Set.of("w"), Set.of(),
                new ProjectedAdamW.Settings(kind, 1, 2, scale, "std", false, true, false), B1, B2, EPS, WD, 0);
    }

    @Test
    void galoreIsAdamInTheGradientsTopSingularSubspace() {
        Tensor w = weight();
        ProjectedAdamW opt = projected(w, ProjectedAdamW.Kind.GALORE, 2.0);
        setGrad(w, G1);
        opt.step(LR);
        assertMatrix(projectedReference(false, 2.0, 1), values(w), 1e-10);
        setGrad(w, G2);
        opt.step(LR);
        assertMatrix(projectedReference(false, 2.0, 2), values(w), 1e-10);
        // moments live in the projected (1, 3) space, plus the (2, 1) projection itself
        assertEquals(3, opt.state().get("w.exp_avg").numel());
        assertEquals(2, opt.state().get("w.projector").numel());
    }

    @Test
    void apolloScalesTheRawGradientPerChannelWithTheNormGrowthLimiter() {
        Tensor w = weight();
        ProjectedAdamW opt = projected(w, ProjectedAdamW.Kind.APOLLO, 4.0);
        twoSteps(opt, w);
        assertMatrix(projectedReference(true, 4.0, 2), values(w), 1e-10);
    }

    @Test
    void apolloMiniScalesTheWholeTensorByOneFactor() {
        Tensor w = weight();
        ProjectedAdamW opt = new ProjectedAdamW(Map.of("w", w), Set.of("w"), Set.of(),
                new ProjectedAdamW.Settings(ProjectedAdamW.Kind.APOLLO, 1, 2, 4.0, "std", false, false, false), B1, B2, EPS,
                WD, 0);
        twoSteps(opt, w);
        assertMatrix(projectedReference(true, 4.0, 2, false), values(w), 1e-10);
    }

    @Test
    void apolloRandomProjectionIsTheSameForTheSameSeed() {
        Tensor a = weight();
        Tensor b = weight();
        var s = new ProjectedAdamW.Settings(ProjectedAdamW.Kind.APOLLO, 1, 2, 1.0, "std", true, true, false);
        twoSteps(new ProjectedAdamW(Map.of("w", a), Set.of("w"), Set.of(), s, B1, B2, EPS, WD, 7), a);
        twoSteps(new ProjectedAdamW(Map.of("w", b), Set.of("w"), Set.of(), s, B1, B2, EPS, WD, 7), b);
        assertMatrix(new double[][] {{values(a)[0], values(a)[1], values(a)[2]}, {values(a)[3], values(a)[4], values(a)[5]}},
                values(b), 0);
    }

    static float bf16(double x) {
        int bits = Float.floatToIntBits((float) x);
        bits += 0x7FFF + ((bits >> 16) & 1);   // round to nearest even on the upper 16 bits
        return Float.intBitsToFloat(bits & 0xFFFF0000);
    }

    /** (2, k) x (k, c) with bfloat16 inputs, a float accumulator and a bfloat16 result, as libtorch's CPU bf16 matmul. */
    static double[][] mm(double[][] x, double[][] y) {
        double[][] out = new double[x.length][y[0].length];
        for (int i = 0; i < x.length; i++) {
            for (int j = 0; j < y[0].length; j++) {
                float s = 0;
                for (int k = 0; k < y.length; k++) {
                    s += (float) x[i][k] * (float) y[k][j];
                }
                out[i][j] = bf16(s);
            }
        }
        return out;
    }

    static double[][] t(double[][] x) {
        double[][] out = new double[x[0].length][x.length];
        for (int i = 0; i < x.length; i++) {
            for (int j = 0; j < x[0].length; j++) {
                out[j][i] = x[i][j];
            }
        }
        return out;
    }

    static double[][] lin(double a, double[][] x, double b, double[][] y) {
        double[][] out = new double[x.length][x[0].length];
        for (int i = 0; i < x.length; i++) {
            for (int j = 0; j < x[0].length; j++) {
                out[i][j] = bf16(bf16((float) a * (float) x[i][j]) + (y == null ? 0f : bf16((float) b * (float) y[i][j])));
            }
        }
        return out;
    }

    /** zeropower_via_newtonschulz5 on a wide 2x3 matrix, in bfloat16. */
    static double[][] newtonSchulz(double[][] g) {
        double[][] x = lin(1, g, 0, null);
        float sq = 0;
        for (double[] row : x) {
            for (double e : row) {
                sq += (float) (e * e);
            }
        }
        double norm = bf16(bf16(Math.sqrt(sq)) + 1e-7);
        for (int i = 0; i < 2; i++) {
            for (int j = 0; j < 3; j++) {
                x[i][j] = bf16((float) x[i][j] / (float) norm);
            }
        }
        for (int s = 0; s < 5; s++) {
            double[][] a = mm(x, t(x));
            double[][] b = lin(-4.7750, a, 2.0315, mm(a, a));
            x = lin(3.4445, x, 1, mm(b, x));
        }
        return x;
    }

    @Test
    void muonOrthogonalisesNesterovMomentumForHiddenMatrices() {
        Tensor w = weight();
        Muon opt = new Muon(Map.of("model.layers.0.mlp.up_proj.weight", w), Set.of("model.layers.0.mlp.up_proj.weight"),
                B1, B2, EPS, WD);
        twoSteps(opt, w);
        double[][] p = w0();
        double[][] buf = new double[2][3];
        double[][] grads = {G1, G2};
        for (double[] gFlat : grads) {
            double[][] g = grad(gFlat);
            double[][] nesterov = new double[2][3];
            for (int i = 0; i < 2; i++) {
                for (int j = 0; j < 3; j++) {
                    buf[i][j] = 0.95 * buf[i][j] + g[i][j];
                    nesterov[i][j] = g[i][j] + 0.95 * buf[i][j];
                }
            }
            double[][] u = newtonSchulz(nesterov);
            double adjusted = LR * 0.2 * Math.sqrt(3);
            for (int i = 0; i < 2; i++) {
                for (int j = 0; j < 3; j++) {
                    p[i][j] = p[i][j] * (1 - LR * WD) - adjusted * u[i][j];
                }
            }
        }
        assertMatrix(p, values(w), 5e-4);
        assertFalse(ModelLayout.isHiddenMatrix("model.embed_tokens.weight", w.dim()));
        assertFalse(ModelLayout.isHiddenMatrix("lm_head.weight", w.dim()));
    }

    @Test
    void muonUsesAdamWForTheRest() {
        Tensor w = weight();
        Muon opt = new Muon(Map.of("model.norm.weight", w), Set.of(), B1, B2, EPS, WD);
        twoSteps(opt, w);
        double[][] p = w0();
        double[][] m = new double[2][3];
        double[][] v = new double[2][3];
        double[][] grads = {G1, G2};
        for (int t = 1; t <= 2; t++) {
            double[][] g = grad(grads[t - 1]);
            for (int i = 0; i < 2; i++) {
                for (int j = 0; j < 3; j++) {
                    m[i][j] += (1 - B1) * (g[i][j] - m[i][j]);
                    v[i][j] += (1 - B2) * (g[i][j] * g[i][j] - v[i][j]);
                    double dir = m[i][j] / (EPS + Math.sqrt(v[i][j]));
                    double scale = (1 - Math.pow(B1, t)) / Math.sqrt(1 - Math.pow(B2, t));
                    p[i][j] = p[i][j] * (1 - LR * WD) - LR / scale * dir;   // decay applies to norms too in Muon
                }
            }
        }
        assertMatrix(p, values(w), 1e-10);
    }

    /** Adam-mini with one v per block of {@code blockSize} consecutive weights (row-major). */
    static double[][] adamMiniReference(int blockSize, boolean decay) {
        double[][] p = w0();
        double[] m = new double[6];
        double[] v = new double[6 / blockSize];
        double[][] grads = {G1, G2};
        for (int t = 1; t <= 2; t++) {
            double[] g = grads[t - 1];
            double[] flat = {p[0][0], p[0][1], p[0][2], p[1][0], p[1][1], p[1][2]};
            for (int b = 0; b < v.length; b++) {
                double meanSq = 0;
                for (int k = b * blockSize; k < (b + 1) * blockSize; k++) {
                    meanSq += g[k] * g[k] / blockSize;
                }
                v[b] = B2 * v[b] + (1 - B2) * meanSq;
            }
            for (int k = 0; k < 6; k++) {
                if (decay) {
                    flat[k] *= 1 - LR * WD;
                }
                m[k] += (1 - B1) * (g[k] - m[k]);
                double h = Math.sqrt(v[k / blockSize]) / Math.sqrt(1 - Math.pow(B2, t)) + EPS;
                flat[k] -= LR / (1 - Math.pow(B1, t)) * m[k] / h;
            }
            p = new double[][] {{flat[0], flat[1], flat[2]}, {flat[3], flat[4], flat[5]}};
        }
        return p;
    }

    @Test
    void adamMiniSharesOneSecondMomentPerHeadForQueriesAndPerTensorOtherwise() {
        Tensor q = weight();
        Tensor up = weight();
        Tensor norm = weight();
        Map<String, Tensor> params = new LinkedHashMap<>();
        params.put("model.layers.0.self_attn.q_proj.weight", q);   // 2 heads of 3 weights
        params.put("model.layers.0.mlp.up_proj.weight", up);
        params.put("model.layers.0.input_layernorm.weight", norm);
        AdamMini opt = new AdamMini(params, 3, B1, B2, EPS, WD);
        setGrad(q, G1);
        setGrad(up, G1);
        setGrad(norm, G1);
        opt.step(LR);
        setGrad(q, G2);
        setGrad(up, G2);
        setGrad(norm, G2);
        opt.step(LR);
        assertMatrix(adamMiniReference(3, true), values(q), 1e-10);
        assertMatrix(adamMiniReference(6, true), values(up), 1e-10);
        assertMatrix(adamMiniReference(6, false), values(norm), 1e-10);   // no decay for norms
        assertEquals(2, opt.state().get("model.layers.0.self_attn.q_proj.weight.v").numel());
        assertEquals(1, opt.state().get("model.layers.0.mlp.up_proj.weight.v").numel());
    }

    @Test
    void loraPlusTrainsBAtTheLearningRateTimesTheRatio() {
        Tensor a = weight();
        Tensor b = weight();
        Map<String, Tensor> params = new LinkedHashMap<>();
        params.put("x.lora_A.weight", a);
        params.put("x.lora_B.weight", b);
        AdamW opt = new AdamW(params, Set.of(), Map.of("x.lora_B.weight", 16.0), B1, B2, EPS, WD);
        setGrad(a, G1);
        setGrad(b, G1);
        opt.step(LR);
        setGrad(a, G2);
        setGrad(b, G2);
        opt.step(LR);
        assertMatrix(adamWReference(LR), values(a), 1e-10);
        assertMatrix(adamWReference(LR * 16), values(b), 1e-10);
    }

    /** torch.optim.AdamW on the 2x3 weight for two steps at learning rate {@code lr}. */
    static double[][] adamWReference(double lr) {
        double[][] p = w0();
        double[][] m = new double[2][3];
        double[][] v = new double[2][3];
        double[][] grads = {G1, G2};
        for (int t = 1; t <= 2; t++) {
            double[][] g = grad(grads[t - 1]);
            for (int i = 0; i < 2; i++) {
                for (int j = 0; j < 3; j++) {
                    p[i][j] *= 1 - lr * WD;
                    m[i][j] = B1 * m[i][j] + (1 - B1) * g[i][j];
                    v[i][j] = B2 * v[i][j] + (1 - B2) * g[i][j] * g[i][j];
                    double denom = Math.sqrt(v[i][j]) / Math.sqrt(1 - Math.pow(B2, t)) + EPS;
                    p[i][j] -= lr / (1 - Math.pow(B1, t)) * m[i][j] / denom;
                }
            }
        }
        return p;
    }

    @Test
    void badamTrainsOneLayerAtATimeAndSwitchesByBadamsRule() {
        Tensor l0 = weight();
        Tensor l1 = weight();
        Tensor embed = weight();
        Map<String, Tensor> params = new LinkedHashMap<>();
        params.put("model.embed_tokens.weight", embed);
        params.put("model.layers.0.mlp.up_proj.weight", l0);
        params.put("model.layers.1.mlp.up_proj.weight", l1);
        BlockAdam opt = new BlockAdam(params, Set.of(), "ascending", null, 2, B1, B2, EPS, WD, 0);
        assertEquals(0, opt.activeBlock());
        assertTrue(l0.requires_grad());
        assertFalse(l1.requires_grad());
        assertFalse(embed.requires_grad(), "embeddings never train in layer mode");
        setGrad(l0, G1);
        opt.step(LR);                                       // step 1: (1 + 1) % 2 == 0, switch
        assertEquals(1, opt.activeBlock());
        assertFalse(l0.requires_grad());
        assertFalse(l0.grad().defined(), "the frozen block's gradient is released");
        double[] afterStep1 = values(l0);
        assertMatrix(w0(), values(l1), 0);
        setGrad(l1, G2);
        opt.step(LR);                                       // step 2: no switch
        assertEquals(1, opt.activeBlock());
        assertMatrix(new double[][] {{afterStep1[0], afterStep1[1], afterStep1[2]}, {afterStep1[3], afterStep1[4],
                afterStep1[5]}}, values(l0), 0);
        // the new block starts with fresh AdamW state: its first update is lr * g / |g| (plus decay)
        double[][] want = w0();
        for (int i = 0; i < 2; i++) {
            for (int j = 0; j < 3; j++) {
                double g = G2[i * 3 + j];
                want[i][j] = want[i][j] * (1 - LR * WD) - LR * g / (Math.abs(g) + EPS);
            }
        }
        assertMatrix(want, values(l1), 1e-9);
        setGrad(l1, G1);
        opt.step(LR);                                       // step 3: (3 + 1) % 2 == 0, back to block 0
        assertEquals(0, opt.activeBlock());
        assertMatrix(w0(), values(embed), 0);
        setGrad(l0, G2);                                    // the block whose gradient was released trains again
        opt.step(LR);
        try (org.bytedeco.javacpp.PointerScope scope = new org.bytedeco.javacpp.PointerScope()) {
            setGrad(l0, G1);                                // step 5 switches inside a per-step scope, as the
            opt.step(LR);                                   // trainer runs it: the new state must outlive the scope
        }
        assertEquals(1, opt.activeBlock());
        setGrad(l1, G1);
        opt.step(LR);
        assertEquals(Set.of("model.layers.1.mlp.up_proj.weight.exp_avg", "model.layers.1.mlp.up_proj.weight.exp_avg_sq",
                "badam.block", "badam.order", "badam.round", "badam.block_steps"), opt.state().keySet());
    }

    @Test
    void badamRatioModeUpdatesAMovingShareOfEachTensorWithSparseAdam() {
        Tensor w = weight();
        Tensor embed = weight();
        Map<String, Tensor> params = new LinkedHashMap<>();
        params.put("model.embed_tokens.weight", embed);
        params.put("model.layers.0.mlp.up_proj.weight", w);
        // half of the 6 weights per step, the mask moving every 2 steps (BAdam: 100), no small-tensor exemption
        SparseBlockAdam opt = new SparseBlockAdam(params, 0.5, "adjacent", 2, 0, 0, B1, B2, EPS);
        assertFalse(embed.requires_grad(), "embeddings stay frozen");
        double[][] grads = {G1, G2, G1};
        double[] p = {1, 2, 3, 4, 5, 6};
        double[] m = new double[6];
        double[] v = new double[6];
        for (int t = 0; t < 3; t++) {
            setGrad(w, grads[t]);
            opt.step(LR);
            int from = t < 2 ? 0 : 3;                       // entries 0..2 for steps 1-2, then 3..5
            int s = t < 2 ? t + 1 : 1;                      // moments restart when the mask moves
            if (t == 2) {
                java.util.Arrays.fill(m, 0);
                java.util.Arrays.fill(v, 0);
            }
            double stepSize = LR * Math.sqrt(1 - Math.pow(B2, s)) / (1 - Math.pow(B1, s));
            for (int i = from; i < from + 3; i++) {
                double g = grads[t][i];
                m[i] += (1 - B1) * (g - m[i]);
                v[i] += (1 - B2) * (g * g - v[i]);
                p[i] -= stepSize * m[i] / (Math.sqrt(v[i]) + EPS);
            }
            assertMatrix(new double[][] {{p[0], p[1], p[2]}, {p[3], p[4], p[5]}}, values(w), 1e-10);
        }
        assertEquals(List.of("model.layers.0.mlp.up_proj.weight"), opt.names());
        assertEquals(3, opt.state().get("model.layers.0.mlp.up_proj.weight.exp_avg").numel());
    }

    @Test
    void badamStateRoundTripsThroughACheckpoint() {
        Map<String, Tensor> a = new LinkedHashMap<>();
        a.put("model.layers.0.w", weight());
        a.put("model.layers.1.w", weight());
        BlockAdam first = new BlockAdam(a, Set.of(), "descending", null, 3, B1, B2, EPS, WD, 0);
        assertEquals(1, first.activeBlock());
        setGrad(a.get("model.layers.1.w"), G1);
        first.step(LR);
        Map<String, Tensor> b = new LinkedHashMap<>();
        b.put("model.layers.0.w", weight());
        b.put("model.layers.1.w", weight());
        BlockAdam resumed = new BlockAdam(b, Set.of(), "descending", 0, 3, B1, B2, EPS, WD, 0);
        resumed.load(first.state(), first.numSteps());
        assertEquals(1, resumed.activeBlock());
        assertTrue(b.get("model.layers.1.w").requires_grad());
        assertThrows(IllegalArgumentException.class, () -> new BlockAdam(Map.of("model.norm.weight", weight()), Set.of(),
                "ascending", null, 2, B1, B2, EPS, WD, 0));
    }
}
