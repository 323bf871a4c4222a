package dev.sparksft.bench;

import dev.sparksft.data.Batch;
import dev.sparksft.data.Collator;
import dev.sparksft.data.TokenizedExample;
import dev.sparksft.loss.SftLoss;
import dev.sparksft.model.CausalLm;
import dev.sparksft.model.ModelConfig;
import dev.sparksft.optim.AdamW;
import dev.sparksft.runtime.Torch;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

/**
 * Training throughput of a ~25M-parameter Llama at sequence 512 against the matmul peak of the
 * row's dtype and threads, measured in the same process: full fine-tuning steps (forward,
 * backward, AdamW) on random tokens. Achieved FLOP/s counts 6 x (params without the embedding) x
 * tokens plus attention, 12 x layers x hidden x seq per token (PaLM's accounting). The peak is the
 * median of {@link #PEAK_RUNS} timed 2048^3 matmuls, half before the steps and half after (so a
 * clock or neighbour change during the row shows in its min-max); a share above 100% means the
 * peak was not measured reliably and is printed as such, never as a figure. Prints one markdown row.
 *
 * <p>Usage: TrainBench THREADS [STEPS] [BATCH] [fp32|bf16] [INTRA_OP_THREADS (1)]
 */
public final class TrainBench {
    static final int PEAK_RUNS = 10;

    private TrainBench() {}

    public static void main(String[] args) throws Exception {
        int threads = Integer.parseInt(args[0]);
        int steps = args.length > 1 ? Integer.parseInt(args[1]) : 5;
        int batch = args.length > 2 ? Integer.parseInt(args[2]) : 2;
        int seq = 512;
        boolean bf16 = args.length > 3 && args[3].equals("bf16");
        int intraOp = args.length > 4 ? Integer.parseInt(args[4]) : 1;
        Torch.load(threads, intraOp);
        List<Double> peaks = new ArrayList<>(matmulRates(2048, bf16, PEAK_RUNS / 2));

        CausalLm model = BenchModel.random();
        ModelConfig cfg = model.config();
        Map<String, Tensor> tensors = model.weights().tensors();
        tensors.values().forEach(t -> t.set_requires_grad(true));
        Random rng = new Random(0);
        long params = tensors.values().stream().mapToLong(Tensor::numel).sum();
        // the embedding is a lookup, not a matmul: FLOPs count the other parameters (PaLM's 6N)
        long matmulParams = params - tensors.get("model.embed_tokens.weight").numel();
        AdamW opt = new AdamW(tensors, Set.of(), 0.9, 0.999, 1e-8, 0.0);
        SftLoss loss = new SftLoss(SftLoss.Kind.CROSS_ENTROPY, 1);

        List<TokenizedExample> examples = new ArrayList<>();
        for (int b = 0; b < batch; b++) {
            int[] ids = new int[seq];
            for (int i = 0; i < seq; i++) {
                ids[i] = rng.nextInt(cfg.vocabSize());
            }
            examples.add(new TokenizedExample(b, ids, ids));
        }
        long start = 0;
        for (int s = -1; s < steps; s++) { // step -1 warms up
            if (s == 0) {
                start = System.nanoTime();
            }
            try (PointerScope scope = new PointerScope()) {
                Batch bt = Collator.rightPadded(examples, 0, 8);
                Tensor logits;
                try (dev.sparksft.runtime.Autocast autocast = dev.sparksft.runtime.Autocast.cpuBf16(bf16)) {
                    logits = model.forward(bt.inputIds(), bt.attentionMask(), bt.positionIds());
                }
                loss.sum(logits, bt.labels()).div(new Scalar((double) batch * seq)).backward();
                opt.step(1e-4);
                for (Tensor p : tensors.values()) {
                    p.grad().zero_();
                }
            }
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        peaks.addAll(matmulRates(2048, bf16, PEAK_RUNS - PEAK_RUNS / 2));
        double tokensPerSecond = (double) steps * batch * seq / seconds;
        double flopsPerToken = 6.0 * matmulParams + 12.0 * cfg.numLayers() * cfg.hiddenSize() * seq;
        double gflops = tokensPerSecond * flopsPerToken / 1e9;
        List<Double> sorted = peaks.stream().sorted().toList();
        double peak = (sorted.get((sorted.size() - 1) / 2) + sorted.get(sorted.size() / 2)) / 2;
        double share = 100 * gflops / peak;
        String shareText = share <= 100 ? String.format("%.1f%%", share) : "peak unreliable (above it)";
        System.out.printf("| " + (bf16 ? "bf16 autocast" : "fp32") + " | %d + %d | %.1fM | %d x %d | %.0f | %.1f "
                        + "| %.1f (%.1f-%.1f) | %s |%n", threads, intraOp, params / 1e6, batch, seq,
                tokensPerSecond, gflops, peak, sorted.get(0), sorted.get(sorted.size() - 1), shareText);
    }

    /**
     * GFLOP/s of {@code runs} timed n^3 matmuls in fp32 or bf16 (after one untimed warm-up), with
     * the threads the row trains with: bf16 matmuls run in oneDNN on the intra-op threads.
     */
    static List<Double> matmulRates(int n, boolean bf16, int runs) {
        Tensor a = torch.randn(n, n);
        Tensor b = torch.randn(n, n);
        if (bf16) {
            a = a.to(torch.ScalarType.BFloat16);
            b = b.to(torch.ScalarType.BFloat16);
        }
        List<Double> rates = new ArrayList<>();
        for (int i = 0; i <= runs; i++) {
            try (PointerScope scope = new PointerScope()) {
                long t0 = System.nanoTime();
                a.matmul(b).sum().item_double();
                double s = (System.nanoTime() - t0) / 1e9;
                if (i > 0) {
                    rates.add(2.0 * n * n * n / s / 1e9);
                }
            }
        }
        return rates;
    }
}
