package dev.sparksft.bench;

import dev.sparksft.data.Batch;
import dev.sparksft.data.Collator;
import dev.sparksft.data.TokenizedExample;
import dev.sparksft.loss.SftLoss;
import dev.sparksft.model.CausalLm;
import dev.sparksft.model.ModelConfig;
import dev.sparksft.optim.AdamW;
import dev.sparksft.runtime.Autocast;
import dev.sparksft.runtime.Torch;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.function.Supplier;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;

/**
 * Where a training step of the bench model (BenchModel, batch 2 x 512) spends its time, in fp32,
 * bf16 autocast and pure_bf16, under one thread setting: the step's phases (forward with the loss,
 * backward, optimizer), then each kind of op the step runs at the model's own shapes, timed alone
 * (median of {@link #RUNS}), times how often one step runs it, so the op rows add up to about the
 * phases. The op rows are what a bf16 path changes: the linears' forward (x W^T) and their two
 * backward matmuls (dX = dY W, dW = dY^T X), attention, the elementwise ops, the loss over the
 * vocabulary, and autocast's cast of every float32 weight to bfloat16 (once per forward).
 *
 * <p>Prints markdown rows: {@code | dtype | threads | part | ms per step | share of the step |}.
 * Usage: PrecisionProfile BLAS_THREADS INTRA_OP_THREADS fp32|bf16|pure_bf16 [RUNS (5)]
 */
public final class PrecisionProfile {
    private static int RUNS = 5;   // timed runs per figure, after one warm-up (the last argument)
    private static final int BATCH = 2;
    private static final int SEQ = 512;

    private PrecisionProfile() {}

    public static void main(String[] args) throws Exception {
        int blas = Integer.parseInt(args[0]);
        int intra = Integer.parseInt(args[1]);
        String mode = args[2];
        RUNS = args.length > 3 ? Integer.parseInt(args[3]) : RUNS;
        boolean autocast = mode.equals("bf16");
        boolean pure = mode.equals("pure_bf16");
        Torch.load(blas, intra);
        String label = "| " + mode + " | " + blas + " + " + intra + " | ";

        CausalLm model = BenchModel.random(pure);
        ModelConfig cfg = model.config();
        Map<String, Tensor> tensors = model.weights().tensors();
        tensors.values().forEach(t -> t.set_requires_grad(true));
        AdamW opt = new AdamW(tensors, Set.of(), 0.9, 0.999, 1e-8, 0.0);
        SftLoss loss = new SftLoss(SftLoss.Kind.CROSS_ENTROPY, 1);
        List<TokenizedExample> examples = randomExamples(cfg.vocabSize());

        Map<String, List<Double>> phases = new LinkedHashMap<>();
        for (String p : List.of("forward + loss", "backward", "optimizer")) {
            phases.put(p, new ArrayList<>());
        }
        for (int s = -1; s < RUNS; s++) { // step -1 warms up
            try (PointerScope scope = new PointerScope()) {
                Batch bt = Collator.rightPadded(examples, 0, 8);
                long t0 = System.nanoTime();
                Tensor total;
                try (Autocast region = Autocast.cpuBf16(autocast)) {
                    Tensor logits = model.forward(bt.inputIds(), bt.attentionMask(), bt.positionIds());
                    total = loss.sum(logits, bt.labels()).div(new Scalar((double) BATCH * SEQ));
                }
                total.item_double();
                long t1 = System.nanoTime();
                total.backward();
                long t2 = System.nanoTime();
                opt.step(1e-4);
                long t3 = System.nanoTime();
                for (Tensor p : tensors.values()) {
                    p.grad().zero_();
                }
                if (s >= 0) {
                    phases.get("forward + loss").add((t1 - t0) / 1e6);
                    phases.get("backward").add((t2 - t1) / 1e6);
                    phases.get("optimizer").add((t3 - t2) / 1e6);
                }
            }
        }
        double step = phases.values().stream().mapToDouble(PrecisionProfile::median).sum();
        for (Map.Entry<String, List<Double>> e : phases.entrySet()) {
            row(label, "phase: " + e.getKey(), median(e.getValue()), step);
        }
        row(label, "phase: step", step, step);

        boolean bf16Ops = autocast || pure;
        torch.ScalarType dt = bf16Ops ? torch.ScalarType.BFloat16 : torch.ScalarType.Float;
        int tokens = BATCH * SEQ;
        int h = cfg.hiddenSize();
        int layers = cfg.numLayers();
        int inter = cfg.intermediateSize();
        int heads = cfg.numHeads();
        // linear shapes (in, out) and how many of each one step runs
        int[][] linears = {{h, h, 4 * layers}, {h, inter, 2 * layers}, {inter, h, layers}, {h, cfg.vocabSize(), 1}};
        for (int[] l : linears) {
            Tensor x = torch.randn(tokens, l[0]).to(dt);
            Tensor w = torch.randn(l[1], l[0]).to(dt);
            Tensor dy = torch.randn(tokens, l[1]).to(dt);
            String shape = tokens + "x" + l[0] + " -> " + l[1] + ", x" + l[2];
            row(label, "linear forward x W^T, " + shape, l[2] * time(() -> x.matmul(w.t())), step);
            row(label, "linear backward dY W, " + shape, l[2] * time(() -> dy.matmul(w)), step);
            row(label, "linear backward dY^T X, " + shape, l[2] * time(() -> dy.t().matmul(x)), step);
        }
        Tensor q = torch.randn(BATCH, heads, SEQ, h / heads).to(dt).set_requires_grad(true);
        Tensor k = torch.randn(BATCH, heads, SEQ, h / heads).to(dt).set_requires_grad(true);
        Tensor v = torch.randn(BATCH, heads, SEQ, h / heads).to(dt).set_requires_grad(true);
        row(label, "attention forward + backward (sdpa, causal), x" + layers, layers * time(() -> {
            Tensor o = torch.scaled_dot_product_attention(q, k, v, new org.bytedeco.pytorch.TensorOptional(), 0.0,
                    true, new org.bytedeco.pytorch.DoubleOptional(), false);
            o.sum().backward();
            return o;
        }), step);
        Tensor act = torch.randn(tokens, inter).to(dt);
        Tensor act2 = torch.randn(tokens, inter).to(dt);
        row(label, "silu(gate) * up, x" + layers, layers * time(() -> torch.silu(act).mul(act2)), step);
        Tensor hid = torch.randn(tokens, h).to(dt);
        Tensor norm = torch.ones(h).to(dt);
        row(label, "rms norm, x" + (2 * layers + 1), (2 * layers + 1) * time(() -> torch.rms_norm(hid,
                new long[] {h}, new org.bytedeco.pytorch.TensorOptional(norm),
                new org.bytedeco.pytorch.DoubleOptional(1e-6))), step);
        Tensor logits = torch.randn(tokens, cfg.vocabSize()).to(dt);
        row(label, "log_softmax over the vocabulary (float32, as the loss does)", time(() ->
                torch.log_softmax(logits.to(torch.ScalarType.Float), -1)), step);
        if (autocast) {
            TensorVector masters = new TensorVector(tensors.values().toArray(new Tensor[0]));
            row(label, "autocast: every float32 weight cast to bf16", time(() -> {
                Tensor last = null;
                for (long i = 0; i < masters.size(); i++) {
                    last = masters.get(i).to(torch.ScalarType.BFloat16);
                }
                return last;
            }), step);
        }
    }

    private static List<TokenizedExample> randomExamples(int vocab) {
        Random rng = new Random(0);
        List<TokenizedExample> examples = new ArrayList<>();
        for (int b = 0; b < BATCH; b++) {
            int[] ids = new int[SEQ];
            for (int i = 0; i < SEQ; i++) {
                ids[i] = rng.nextInt(vocab);
            }
            examples.add(new TokenizedExample(b, ids, ids));
        }
        return examples;
    }

    /** Median milliseconds of {@link #RUNS} runs of {@code op} after one warm-up. */
    private static double time(Supplier<Tensor> op) {
        List<Double> ms = new ArrayList<>();
        for (int i = 0; i <= RUNS; i++) {
            try (PointerScope scope = new PointerScope()) {
                long t0 = System.nanoTime();
                op.get().sum().item_double();
                if (i > 0) {
                    ms.add((System.nanoTime() - t0) / 1e6);
                }
            }
        }
        return median(ms);
    }

    private static double median(List<Double> values) {
        double[] v = values.stream().mapToDouble(Double::doubleValue).sorted().toArray();
        return (v[(v.length - 1) / 2] + v[v.length / 2]) / 2;
    }

    private static void row(String label, String part, double ms, double stepMs) {
        System.out.printf("%s%s | %.1f | %.0f%% |%n", label, part, ms, 100 * ms / stepMs);
    }
}
