package dev.sparksft.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sparksft.config.SftConfig;
import dev.sparksft.data.Batch;
import dev.sparksft.data.Collator;
import dev.sparksft.data.Packing;
import dev.sparksft.data.TokenizedExample;
import dev.sparksft.loss.SftLoss;
import dev.sparksft.model.CausalLm;
import dev.sparksft.model.FourBitQuantization;
import dev.sparksft.model.FourBitType;
import dev.sparksft.model.LoraAdapter;
import dev.sparksft.model.ModelWeights;
import dev.sparksft.model.QuantizedWeight;
import dev.sparksft.optim.Optimizer;
import dev.sparksft.optim.Optimizers;
import dev.sparksft.runtime.Torch;
import dev.sparksft.train.TrainableParameters;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;

/**
 * Training throughput of one fine-tuning method on the 25.6M benchmark Llama, one JVM per row so
 * that peak RSS (VmHWM) belongs to that method alone:
 * <ul>
 *   <li>{@code full} / {@code lora} / {@code qlora}: batches of 1 x 256 random tokens, AdamW; LoRA rank 8 on every
 *       linear ({@code qlora}: over the linears in NF4 with double quantization, dequantized per matmul). Short sequences, so that weights, gradients and optimizer state, not activations,
 *       dominate memory (at 2 x 512 the saved activations alone take about 750 MB of this model);</li>
 *   <li>{@code padding} / {@code packing}: one pass over 48 examples of skewed length (3 in 4 of 16-96
 *       tokens, 1 in 4 of 256-512), padded batches of 4 against neat-packed sequences of at most 512
 *       tokens, 1 per step; "useful tokens" are the examples' own tokens, padding excluded.</li>
 * </ul>
 * Usage: MethodsBench {full|lora|qlora|padding|packing} THREADS [STEPS (6)]
 */
public final class MethodsBench {
    private MethodsBench() {}

    public static void main(String[] args) throws Exception {
        String mode = args[0];
        int threads = Integer.parseInt(args[1]);
        int steps = args.length > 2 ? Integer.parseInt(args[2]) : 6;
        Torch.load(threads, 1);
        CausalLm model = BenchModel.random();
        ObjectNode values = new ObjectMapper().createObjectNode();
        values.put("model_name_or_path", "bench").put("template", "chatml").put("dataset", "bench")
                .put("finetuning_type", mode.endsWith("lora") ? "lora" : "full").put("lora_rank", 8);
        SftConfig config = SftConfig.fromValues(values);
        if (mode.equals("qlora")) {
            model = quantized(model);
        }
        if (mode.equals("lora") || mode.equals("qlora")) {
            var ft = config.finetuning();
            model = model.withAdapter(LoraAdapter.create(model.weights(), new LoraAdapter.Settings(ft.loraRank(),
                    ft.loraAlpha(), ft.loraDropout(), ft.useRslora(), ft.loraTarget(), ft.additionalTarget()), 0));
        }
        Map<String, Tensor> trainable = TrainableParameters.select(model, config.finetuning());
        Optimizer opt = Optimizers.create(trainable, model.config(), config.training(), config.finetuning(), 0);
        SftLoss loss = new SftLoss(SftLoss.Kind.CROSS_ENTROPY, 1);
        Random rng = new Random(0);
        int vocab = model.config().vocabSize();

        List<List<TokenizedExample>> batches = new ArrayList<>();
        if (mode.equals("full") || mode.endsWith("lora")) {
            for (int s = 0; s <= steps; s++) {
                batches.add(List.of(example(0, 256, vocab, rng)));
            }
        } else {
            List<TokenizedExample> skewed = new ArrayList<>();
            for (int i = 0; i < 48; i++) {
                int len = i % 4 == 3 ? 256 + rng.nextInt(257) : 16 + rng.nextInt(81);
                skewed.add(example(i, len, vocab, rng));
            }
            batches.add(List.of(example(0, 512, vocab, rng)));   // warm-up step
            if (mode.equals("packing")) {
                Packing.pack(skewed, 512, true).forEach(p -> batches.add(List.of(p)));
            } else {
                for (int i = 0; i < skewed.size(); i += 4) {
                    batches.add(skewed.subList(i, i + 4));
                }
            }
        }
        long start = 0;
        long useful = 0;
        long padded = 0;
        for (int s = 0; s < batches.size(); s++) {
            if (s == 1) {
                start = System.nanoTime();   // step 0 warms up
            }
            try (PointerScope scope = new PointerScope()) {
                List<TokenizedExample> batch = batches.get(s);
                Batch b = Collator.rightPadded(batch, 0, 8);
                if (s > 0) {
                    useful += batch.stream().mapToInt(TokenizedExample::length).sum();
                    padded += b.inputIds().numel();
                }
                Tensor logits = model.forward(b.inputIds(), b.attentionMask(), b.positionIds());
                loss.sum(logits, b.labels()).div(new Scalar(1000.0)).backward();
                opt.step(1e-4);
                for (Tensor p : trainable.values()) {
                    if (p.grad().defined()) {
                        p.grad().zero_();
                    }
                }
            }
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        long trainableParams = trainable.values().stream().mapToLong(Tensor::numel).sum();
        System.out.printf("| %s | %d | %.2fM | %d | %.0f | %.0f | %.1f%% | %.1f | %d |%n", mode, threads, trainableParams / 1e6,
                batches.size() - 1, useful / seconds, padded / seconds, 100.0 * (padded - useful) / padded, seconds,
                peakRssMb());
    }

    /** {@code model} with its layer linears in NF4 with double quantization, as quantization_bit: 4 loads them. */
    static CausalLm quantized(CausalLm model) {
        FourBitQuantization q = new FourBitQuantization(FourBitType.NF4, true);
        Map<String, Tensor> dense = new java.util.LinkedHashMap<>();
        Map<String, QuantizedWeight> packed = new java.util.LinkedHashMap<>();
        model.weights().tensors().forEach((n, t) -> {
            if (q.quantizes(n)) {
                packed.put(n, QuantizedWeight.quantize(t, q.type(), q.doubleQuant()));
            } else {
                dense.put(n, t);
            }
        });
        return new CausalLm(model.config(), new ModelWeights(dense, packed, Map.of(), Map.of()));
    }

    static TokenizedExample example(long index, int len, int vocab, Random rng) {
        int[] ids = new int[len];
        for (int i = 0; i < len; i++) {
            ids[i] = rng.nextInt(vocab);
        }
        return new TokenizedExample(index, ids, ids);
    }

    /** Peak resident set of this JVM (VmHWM), in MB. */
    static long peakRssMb() throws Exception {
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith("VmHWM:")) {
                return Long.parseLong(line.replaceAll("[^0-9]", "")) / 1024;
            }
        }
        return -1;
    }
}
