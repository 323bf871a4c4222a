package dev.sparksft.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sparksft.config.SftConfig;
import dev.sparksft.model.Dtype;
import dev.sparksft.model.ModelConfig;
import dev.sparksft.model.ModelLayout;
import dev.sparksft.model.TinyModel;
import dev.sparksft.run.LocalRun;
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
 * Usage: MemoryBench MODE (base, fp32, full, pure_bf16, lora, freeze, galore, badam, act_short,
 * act_on, act_off); prints one markdown row.
 */
public final class MemoryBench {
    private static final Path ROOT = Path.of(System.getProperty("java.io.tmpdir"), "spark-sft-bench-memory");

    private MemoryBench() {}

    public static void main(String[] args) throws Exception {
        String mode = args[0];
        Torch.load(2, 1);
        boolean tiny = mode.equals("base");
        Path model = model(tiny);
        boolean longRows = mode.equals("act_on") || mode.equals("act_off");
        Path data = dataset(longRows ? 1000 : 1, longRows ? 2 : 1);
        String method = switch (mode) {
            case "base", "fp32" -> "finetuning_type: full";
            case "full" -> "finetuning_type: full\nbf16: true";
            case "pure_bf16" -> "finetuning_type: full\npure_bf16: true\nbf16: true";
            case "lora" -> "finetuning_type: lora\nbf16: true";
            case "freeze" -> "finetuning_type: freeze\nfreeze_trainable_layers: 2\nbf16: true";
            case "galore" -> "finetuning_type: full\nuse_galore: true\nbf16: true";
            case "badam" -> "finetuning_type: full\nuse_badam: true\nbf16: true";
            case "act_short", "act_on" -> "finetuning_type: lora";
            case "act_off" -> "finetuning_type: lora\ndisable_gradient_checkpointing: true";
            default -> throw new IllegalArgumentException("unknown mode " + mode);
        };
        Path yaml = ROOT.resolve(mode + ".yaml");
        Files.writeString(yaml, "model_name_or_path: " + model + "\ntemplate: empty\ndataset: " + data
                + "\ncutoff_len: 1100\ndo_train: true\nper_device_train_batch_size: " + (longRows ? 2 : 1)
                + "\nmax_steps: 1\nlogging_steps: 1\nsave_strategy: \"no\"\noverwrite_output_dir: true\noutput_dir: "
                + ROOT.resolve("out-" + mode) + "\nnum_threads: 2\n" + method + "\n");
        long start = System.nanoTime();
        LocalRun.run(SftConfig.load(yaml, List.of()));
        double seconds = (System.nanoTime() - start) / 1e9;
        long params = new ModelLayout(ModelConfig.load(model)).expectedShapes().values().stream()
                .mapToLong(s -> java.util.Arrays.stream(s).reduce(1, (a, b) -> a * b)).sum();
        System.out.printf("| %s | %d | %d | %d | %.1f |%n", mode, params, MethodsBench.peakRssMb(), longRows ? 2048 : 8,
                seconds);
    }

    /** The bench model (or the tiny base model), written once in bf16 with the project's own tokenizer. */
    static Path model(boolean tiny) throws Exception {
        Path dir = ROOT.resolve(tiny ? "model-tiny" : "model-193m");
        if (!Files.exists(dir.resolve("config.json"))) {
            TinyModel.write(tiny ? new TinyModel.Options("llama", dir, 0, 64, 2, 4, 4, 128, null, 256, 0)
                    : new TinyModel.Options("llama", dir, 0, 1024, 15, 16, 16, 2816, null, 256, 0), Dtype.BF16);
        }
        return dir;
    }

    /** {@code rows} examples whose response is {@code letters} random letters (about one token each). */
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
