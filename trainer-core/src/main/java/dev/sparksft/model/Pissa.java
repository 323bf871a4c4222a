package dev.sparksft.model;

import dev.sparksft.UserError;
import dev.sparksft.runtime.Torch;
import java.util.LinkedHashMap;
import java.util.Map;
import org.bytedeco.pytorch.Generator;
import org.bytedeco.pytorch.GeneratorOptional;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.StringViewOptional;
import org.bytedeco.pytorch.T_TensorTensorTensor_T;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;

/**
 * PiSSA (principal singular values and singular vectors adaptation), as PEFT computes it for
 * {@code init_lora_weights: "pissa"} (exact SVD, pissa_iter -1) and {@code "pissa_niter_K"}
 * (torch.svd_lowrank with K subspace iterations, pissa_iter K). For each adapted weight W (out, in):
 * <pre>
 *   W ~ U_r S_r Vh_r                        top r singular triplets, float32
 *   S' = S_r / scaling
 *   A = diag(sqrt(S')) Vh_r      (r, in)
 *   B = U_r diag(sqrt(S'))       (out, r)     so scaling * B A = U_r S_r Vh_r
 *   W_res = W - scaling * B A                 replaces W, in W's dtype
 * </pre>
 * so W_res + scaling * B A computes W at step 0 and training moves the principal part. A trained
 * PiSSA adapter fits W_res only; {@link #converted} rewrites it as a plain LoRA of rank 2r over
 * the original W (PEFT's save_pretrained with path_initial_model_for_weight_conversion):
 * <pre>
 *   W + scaling (B A - B0 A0) = W + scaling [B, -B0] [A; A0]     A' (2r, in), B' (out, 2r)
 * </pre>
 * with r and lora_alpha doubled (lora_alpha x sqrt(2) with rsLoRA), which keeps the scaling.
 * The randomized SVD draws its Gaussian test matrix from a generator keyed by the run's seed and
 * the weight's name, so every rank, and a reload with the same seed, computes the same factors.
 */
public final class Pissa {
    private Pissa() {}

    /** PEFT's init_lora_weights for pissa_iter: -1 exact SVD ("pissa"), K >= 0 randomized ("pissa_niter_K"). */
    public static String initName(int iter) {
        return iter < 0 ? "pissa" : "pissa_niter_" + iter;
    }

    /** Whether an adapter_config.json init_lora_weights value asks for PiSSA's residual base. */
    static boolean isPissa(String init) {
        return init != null && init.toLowerCase(java.util.Locale.ROOT).startsWith("pissa");
    }

    /** The pissa_iter an init_lora_weights value stands for (-1: exact SVD), read as PEFT reads it. */
    static int iterOf(String init) {
        if (init.equals("pissa")) {
            return -1;
        }
        String[] parts = init.split("_niter_");
        if (parts.length == 2) {
            try {
                int k = Integer.parseInt(parts[1]);
                if (k >= 0) {
                    return k;
                }
            } catch (NumberFormatException e) {
                // falls through to the error
            }
        }
        throw new UserError("init_lora_weights '" + init + "' is not PiSSA's: PEFT writes 'pissa' (exact SVD) or "
                + "'pissa_niter_K' (K >= 0 subspace iterations)");
    }

    /**
     * Makes a new adapter PiSSA's: each pair becomes its weight's principal factors and the weight
     * its residual (in place, in the weight's dtype).
     */
    public static void initialise(ModelWeights weights, LoraAdapter adapter, int iter, long seed) {
        try (NoGradGuard noGrad = new NoGradGuard()) {
            adapter.pairs().forEach((name, pair) -> {
                LoraAdapter.Pair f = factors(name, weights.get(name), adapter.rank(), adapter.scaling(), iter, seed);
                pair.a().copy_(f.a());
                pair.b().copy_(f.b());
                subtract(weights.get(name), f, adapter.scaling());
            });
        }
        adapter.initialisedAs(initName(iter));
    }

    /**
     * A loaded PiSSA adapter's base: each adapted weight becomes the residual of its PiSSA
     * factors, recomputed from the weight as at initialisation (what PEFT's from_pretrained does
     * for an adapter saved with init_lora_weights "pissa..."); the adapter's own pairs are kept.
     */
    static void makeResidual(ModelWeights weights, LoraAdapter adapter, String init, long seed) {
        int iter = iterOf(init);
        try (NoGradGuard noGrad = new NoGradGuard()) {
            adapter.pairs().forEach((name, pair) -> subtract(weights.get(name),
                    factors(name, weights.get(name), adapter.rank(), adapter.scaling(), iter, seed), adapter.scaling()));
        }
    }

    /** W -= scaling * B A, computed in float32 and stored in W's dtype. */
    private static void subtract(Tensor w, LoraAdapter.Pair f, double scaling) {
        Tensor delta = f.b().matmul(f.a());                                    // (out, in)
        w.copy_(w.to(torch.ScalarType.Float).sub(delta, new Scalar(scaling)).to(w.scalar_type()));
    }

    /** The PiSSA pair of weight {@code w} (out, in): A (r, in), B (out, r), float32 on w's device. */
    static LoraAdapter.Pair factors(String name, Tensor w, int r, double scaling, int iter, long seed) {
        long out = w.size(0);
        long in = w.size(1);
        if (r > Math.min(out, in)) {
            throw new UserError("pissa_init: lora_rank " + r + " exceeds the rank of " + name + " (" + out + " x " + in
                    + "), whose top-r singular vectors PiSSA takes; set lora_rank <= " + Math.min(out, in));
        }
        Tensor x = w.to(torch.ScalarType.Float);
        Tensor u;    // (out, r)
        Tensor s;    // (r)
        Tensor vh;   // (r, in)
        if (iter < 0) {
            T_TensorTensorTensor_T usv = torch.linalg_svd(x, false, new StringViewOptional());
            u = usv.get0().narrow(1, 0, r);
            s = usv.get1().narrow(0, 0, r);
            vh = usv.get2().narrow(0, 0, r);
        } else {
            Tensor[] usv = lowRankSvd(x, r, iter, Torch.generator(seed, ("pissa:" + name).hashCode()));
            u = usv[0];
            s = usv[1];
            vh = usv[2].t();
        }
        Tensor root = s.div(new Scalar(scaling)).sqrt();                     // sqrt(S_r / scaling), (r)
        Tensor a = vh.mul(root.unsqueeze(1)).contiguous();                   // diag(root) Vh_r
        Tensor b = u.mul(root.unsqueeze(0)).contiguous();                    // U_r diag(root)
        return new LoraAdapter.Pair(a, b);
    }

    /**
     * torch.svd_lowrank(a, q, niter) (Halko, Martinsson and Tropp 2009, algorithm 5.1, as torch
     * implements it): a Gaussian test matrix R (n, q), Q = orth(a R), niter rounds of subspace
     * iteration Q = orth(a orth(a^T Q)), then the exact SVD of the small Q^T a. A wide matrix is
     * transposed first. Returns U (m, q), S (q), V (n, q) with a ~ U diag(S) V^T.
     */
    static Tensor[] lowRankSvd(Tensor a, int q, int niter, Generator gen) {
        boolean wide = a.size(0) < a.size(1);
        Tensor x = wide ? a.t() : a;                                          // tall: (m', n'), m' >= n'
        Tensor r = torch.randn(new long[] {x.size(1), q}, new GeneratorOptional(gen),
                new TensorOptions(torch.ScalarType.Float)).to(x.device(), torch.ScalarType.Float);
        Tensor basis = orth(x.matmul(r));                                     // (m', q)
        for (int i = 0; i < niter; i++) {
            basis = orth(x.t().matmul(basis));                                // (n', q)
            basis = orth(x.matmul(basis));                                    // (m', q)
        }
        Tensor small = basis.t().matmul(x);                                   // (q, n')
        T_TensorTensorTensor_T usv = torch.linalg_svd(small, false, new StringViewOptional());
        Tensor u = basis.matmul(usv.get0());                                  // (m', q)
        Tensor v = usv.get2().t();                                            // (n', q)
        return wide ? new Tensor[] {v, usv.get1(), u} : new Tensor[] {u, usv.get1(), v};
    }

    /** The Q of a reduced QR decomposition: orthonormal columns spanning x's (m, q). */
    private static Tensor orth(Tensor x) {
        return torch.linalg_qr(x, "reduced").get0();
    }

    /**
     * The plain LoRA adapter over the original weights that computes what {@code trained} computes
     * over the residual ones, given the pairs it started from: rank 2r, A' = [A; A0], B' = [B, -B0],
     * lora_alpha doubled (x sqrt(2) with rsLoRA), init_lora_weights true; saved modules as trained.
     */
    public static LoraAdapter converted(LoraAdapter trained, Map<String, LoraAdapter.Pair> initial) {
        Map<String, LoraAdapter.Pair> pairs = new LinkedHashMap<>();
        try (NoGradGuard noGrad = new NoGradGuard()) {
            trained.pairs().forEach((name, p) -> {
                LoraAdapter.Pair p0 = initial.get(name);
                if (p0 == null) {
                    throw new IllegalStateException("no initial pair for " + name);
                }
                Tensor a = torch.cat(new TensorVector(p.a(), p0.a().to(p.a().scalar_type())), 0);          // (2r, in)
                Tensor b = torch.cat(new TensorVector(p.b(), p0.b().to(p.b().scalar_type()).neg()), 1);    // (out, 2r)
                pairs.put(name, new LoraAdapter.Pair(a, b));
            });
        }
        double alpha = trained.rslora() ? trained.alpha() * Math.sqrt(2) : 2 * trained.alpha();
        return trained.withPairs(2 * trained.rank(), alpha, pairs, null);
    }
}
