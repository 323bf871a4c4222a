package dev.sparksft.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sparksft.config.SftConfig;
import dev.sparksft.model.Dtype;
import dev.sparksft.model.ModelConfig;
import dev.sparksft.model.ModelLayout;
import dev.sparksft.model.TinyModel;
import dev.sparksft.run.LocalRun;
import dev.sparksft.run.MemoryEstimate;
import dev.sparksft.runtime.Torch;
import java.io.BufferedWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * Memory of one training run, one JVM per row so that its peak RSS (VmHWM) is that run's alone:
 * a Llama of about 193M parameters (hidden 1024, 15 layers, 16 heads, intermediate 2816) stored in
 * bf16 as real checkpoints are, trained for one step through the whole single-process pipeline
 * ({@link LocalRun}: loading, TrainingSetup, the trainer). Bytes per parameter are the peak RSS
 * above the {@code base} row (the same pipeline on a 0.1M-parameter model: the JVM, libtorch,
 * the tokenizer) divided by the parameter count. Rows:
 * <ul>
 *   <li>method rows, 1 x 8 tokens (activations negligible; bf16 matmuls run on libtorch's reference
 *       kernels on CPUs without AVX512-BF16, so the sequences are short): full AdamW with bf16
 *       autocast (fp32 masters), pure_bf16, LoRA over the bf16 base, freeze (2 layers), GaLore,
 *       BAdam, and full fp32;</li>
 *   <li>activation rows, LoRA in fp32, 2 x 1024 tokens with and without activation checkpointing,
 *       against the same run at 1 x 8 tokens: the difference is the activation memory.</li>
 * </ul>
 * <p>{@code write8b} then {@code lora8b}: one LoRA step (bf16, 1 x 8 tokens) of a Llama-3-8B-shaped
 * model, to show that it fits this 24 GB machine.
 * Usage: MemoryBench MODE (base, fp32, full, pure_bf16, lora, freeze, galore, badam, act_short,
 * act_on, act_off, write8b, lora8b); prints one markdown row.
 */
public final class MemoryBench {
    private static final Path ROOT = Path.of(System.getProperty("java.io.tmpdir"), "spark-sft-bench-memory");

    private MemoryBench() {}

    public static void main(String[] args) throws Exception {
        String mode = args[0];
        Torch.load(2, 1);
        if (mode.equals("write8b")) {   // its own JVM: drawing a 525M-row embedding takes a 2 GB Java array
            long start = System.nanoTime();
            Path dir = eightB();
            System.out.printf("| write8b | %s | %.1f |%n", dir, (System.nanoTime() - start) / 1e9);
            return;
        }
        boolean tiny = mode.equals("base");
        Path model = mode.equals("lora8b") ? eightB() : model(tiny);
        boolean longRows = mode.equals("act_on") || mode.equals("act_off");
        Path data = dataset(longRows ? 1000 : 1, longRows ? 2 : 1);
        String method = switch (mode) {
            case "base", "fp32" -> "finetuning_type: full";
            case "full" -> "finetuning_type: full\nbf16: true";
            case "pure_bf16" -> "finetuning_type: full\npure_bf16: true\nbf16: true";
            case "lora", "lora8b" -> "finetuning_type: lora\nbf16: true";
            case "freeze" -> "finetuning_type: freeze\nfreeze_trainable_layers: 2\nbf16: true";
            case "galore" -> "finetuning_type: full\nuse_galore: true\nbf16: true";
            case "badam" -> "finetuning_type: full\nuse_badam: true\nbf16: true";
            case "act_short", "act_on" -> "finetuning_type: lora";
            case "act_off" -> "finetuning_type: lora\ndisable_gradient_checkpointing: true";
            default -> throw new IllegalArgumentException("unknown mode " + mode);
        };
        Path yaml = ROOT.resolve(mode + ".yaml");
        Files.writeString(yaml, "model_name_or_path: " + model + "\ntemplate: empty\ndataset: " + data
                + "\ncutoff_len: " + (longRows ? 1024 : 64) + "\ndo_train: true\nper_device_train_batch_size: " + (longRows ? 2 : 1)
                + "\nmax_steps: 1\nlogging_steps: 1\nsave_strategy: \"no\"\noverwrite_output_dir: true\noutput_dir: "
                + ROOT.resolve("out-" + mode) + "\nnum_threads: 2\n" + method + "\n");
        SftConfig config = SftConfig.load(yaml, List.of());
        long estimate = MemoryEstimate.of(config, ModelConfig.load(model)).total() >> 20;
        long start = System.nanoTime();
        LocalRun.run(config);
        double seconds = (System.nanoTime() - start) / 1e9;
        long params = new ModelLayout(ModelConfig.load(model)).expectedShapes().values().stream()
                .mapToLong(s -> java.util.Arrays.stream(s).reduce(1, (a, b) -> a * b)).sum();
        System.out.printf("| %s | %d | %d | %d | %.1f | %d |%n", mode, params, MethodsBench.peakRssMb(),
                longRows ? 2048 : 8, seconds, estimate);
    }

    /** The bench model (or the tiny base model), written once in bf16 with the project's own tokenizer. */
    static Path model(boolean tiny) throws Exception {
        Path dir = ROOT.resolve(tiny ? "model-tiny" : "model-193m");
        if (!Files.exists(dir.resolve("generation_config.json"))) {   // written last: the model is whole
            TinyModel.write(tiny ? new TinyModel.Options("llama", dir, 0, 64, 2, 4, 4, 128, null, 256, 0)
                    : new TinyModel.Options("llama", dir, 0, 1024, 15, 16, 16, 2816, null, 256, 0), Dtype.BF16);
        }
        return dir;
    }

    /**
     * A Llama-3-8B-shaped model (hidden 4096, 32 layers, 32 query / 8 key-value heads, intermediate
     * 14336, vocabulary 128256: 8.03B parameters) with random weights in bf16, written once (16 GB).
     */
    static Path eightB() throws Exception {
        Path dir = ROOT.resolve("model-llama3-8b-shape");
        if (!Files.exists(dir.resolve("generation_config.json"))) {   // written last: the model is whole
            TinyModel.write(new TinyModel.Options("llama", dir, 0, 4096, 32, 32, 8, 14336, null, 256, 0), Dtype.BF16,
                    128256);
        }
        return dir;
    }

    /** {@code rows} examples whose response is {@code letters} random letters (more than 1024 tokens for 1000). */
    static Path dataset(int letters, int rows) throws Exception {
        Path file = ROOT.resolve("data-" + letters + "x" + rows + ".jsonl");
        Files.createDirectories(ROOT);
        Random rng = new Random(0);
        ObjectMapper json = new ObjectMapper();
        try (BufferedWriter w = Files.newBufferedWriter(file)) {
            for (int r = 0; r < rows; r++) {
                StringBuilder s = new StringBuilder();
                for (int i = 0; i < letters; i++) {
                    s.append((char) ('a' + rng.nextInt(26))).append(i % 2 == 1 ? " " : "");
                }
                w.write(json.writeValueAsString(Map.of("instruction", "c", "input", "", "output", s.toString())) + "\n");
            }
        }
        return file;
    }
}
