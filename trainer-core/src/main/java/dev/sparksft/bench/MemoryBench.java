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
 *       BAdam, full fp32, and QLoRA (LoRA over the base's linears in NF4 with double quantization);</li>
 *   <li>layer-wise rows, 1 x 8 tokens in float32: APOLLO, apollo_layerwise with activation
 *       checkpointing (one group's gradients at a time) and without it (all gradients, freed as
 *       they are applied);</li>
 *   <li>activation rows, LoRA in fp32, 2 x 1024 tokens with and without activation checkpointing,
 *       against the same run at 1 x 8 tokens: the difference is the activation memory.</li>
 * </ul>
 * <p>{@code write8b} then {@code lora8b}: one LoRA step (bf16, 1 x 8 tokens) of a Llama-3-8B-shaped
 * model, to show that it fits this 24 GB machine.
 * Usage: MemoryBench MODE (base, fp32, full, pure_bf16, lora, qlora, freeze, galore, badam, apollo, apollo_lw,
 * apollo_lw_nockpt, act_short, act_on, act_off, write8b, lora8b; largest prints its own table); prints one markdown row.
 */
public final class MemoryBench {
    private static final Path ROOT = Path.of(System.getProperty("java.io.tmpdir"), "spark-sft-bench-memory");

    private MemoryBench() {}

    public static void main(String[] args) throws Exception {
        String mode = args[0];
        Torch.load(2, 1);
        if (mode.equals("largest")) {
            largest();
            return;
        }
        if (mode.startsWith("zero")) {   // zero{stage}x{world_size}: ranks as threads of this JVM
            zero(Integer.parseInt(mode.substring(4, 5)), Integer.parseInt(mode.substring(6)));
            return;
        }
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
            case "qlora" -> "finetuning_type: lora\nbf16: true\nquantization_bit: 4";
            case "freeze" -> "finetuning_type: freeze\nfreeze_trainable_layers: 2\nbf16: true";
            case "galore" -> "finetuning_type: full\nuse_galore: true\nbf16: true";
            case "badam" -> "finetuning_type: full\nuse_badam: true\nbf16: true";
            // float32 and APOLLO's random projections: no bf16 reference kernels, no SVDs, so the rows take seconds
            case "apollo" -> "finetuning_type: full\nuse_apollo: true";
            case "apollo_lw" -> "finetuning_type: full\nuse_apollo: true\napollo_layerwise: true";
            case "apollo_lw_nockpt" -> "finetuning_type: full\nuse_apollo: true\napollo_layerwise: true\n"
                    + "disable_gradient_checkpointing: true";
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
     * The whole job's peak of {@code worldSize} ranks as threads of this JVM (Gloo over loopback),
     * full AdamW in float32 on the bench model, ZeRO stage {@code stage} (0: replicated), one step
     * of 1 x 8 tokens per rank: prints | zero{stage}x{world} | params | peak MB | estimate MB per rank | seconds |.
     */
    static void zero(int stage, int worldSize) throws Exception {
        Path model = model(false);
        Path data = dataset(1, worldSize);
        Path ds = ROOT.resolve("ds_z" + stage + ".json");
        Files.writeString(ds, "{\"train_micro_batch_size_per_gpu\": \"auto\", \"gradient_accumulation_steps\": \"auto\", "
                + "\"zero_optimization\": {\"stage\": " + stage + "}}");
        Path yaml = ROOT.resolve("zero" + stage + "x" + worldSize + ".yaml");
        Files.writeString(yaml, "model_name_or_path: " + model + "\ntemplate: empty\ndataset: " + data
                + "\ncutoff_len: 64\ndo_train: true\nper_device_train_batch_size: 1\nmax_steps: 1\nlogging_steps: 1\n"
                + "save_strategy: \"no\"\noverwrite_output_dir: true\nnum_threads: 1\nfinetuning_type: full\n"
                + "world_size: " + worldSize + "\n" + (stage > 0 ? "deepspeed: " + ds + "\n" : "") + "output_dir: "
                + ROOT.resolve("out-zero" + stage + "x" + worldSize) + "\n");
        SftConfig config = SftConfig.load(yaml, List.of());
        long estimate = MemoryEstimate.of(config, ModelConfig.load(model)).total() >> 20;
        long start = System.nanoTime();
        java.time.Duration timeout = java.time.Duration.ofSeconds(600);
        org.bytedeco.pytorch.Device cpu = new org.bytedeco.pytorch.Device(org.bytedeco.pytorch.global.torch.DeviceType.CPU);
        try (dev.sparksft.tokenizer.Tokenizer raw = dev.sparksft.tokenizer.Tokenizer.load(model);
             dev.sparksft.dist.Rendezvous rv = dev.sparksft.dist.Rendezvous.host("127.0.0.1", worldSize, timeout)) {
            dev.sparksft.run.RunData runData = dev.sparksft.run.RunData.load(config, raw);
            List<dev.sparksft.data.TokenizedExample> train = runData.trainExamples();
            var plan = dev.sparksft.train.TrainingSetup.plan(train.size(), config.training(), config.finetuning(), worldSize);
            java.util.concurrent.ExecutorService pool = java.util.concurrent.Executors.newFixedThreadPool(worldSize);
            List<java.util.concurrent.Future<?>> ranks = new java.util.ArrayList<>();
            for (int r = 0; r < worldSize; r++) {
                int rank = r;
                ranks.add(pool.submit(() -> {
                    try (dev.sparksft.dist.World w = dev.sparksft.dist.World.join(rank, worldSize, rv.address(), "127.0.0.1",
                            cpu, timeout)) {
                        var m = dev.sparksft.train.Models.forTraining(config, model, null, null, 0, cpu);
                        Path out = Path.of(config.training().outputDir());
                        var outputs = rank == 0 ? dev.sparksft.train.Outputs.prepare(out, model, true, false)
                                : dev.sparksft.train.Outputs.open(out, model);
                        dev.sparksft.run.RankRun.trainAndEvaluate(config, m, model, train.size(),
                                new dev.sparksft.train.PlannedBatches(train, plan, rank, worldSize, 1, 1), List.of(), w,
                                runData.tokenizer().padId(), outputs, null,
                                new dev.sparksft.data.LocalMediaFiles(config.data().mediaDir()), t -> { });
                        w.allReduceSum(0L);
                        return null;
                    }
                }));
            }
            for (var f : ranks) {
                f.get();
            }
            pool.shutdownNow();
        }
        long params = new ModelLayout(ModelConfig.load(model)).expectedShapes().values().stream()
                .mapToLong(sh -> java.util.Arrays.stream(sh).reduce(1, (a, b) -> a * b)).sum();
        System.out.printf("| zero%dx%d | %d | %d | %d | %.1f |%n", stage, worldSize, params, MethodsBench.peakRssMb(),
                estimate, (System.nanoTime() - start) / 1e9);
    }

    /** Public Llama shapes: name, hidden, layers, heads, kv heads, intermediate, vocabulary. */
    private static final Object[][] SHAPES = {
            {"Llama-3.2-1B", 2048, 16, 32, 8, 8192, 128256}, {"Llama-3.2-3B", 3072, 28, 24, 8, 8192, 128256},
            {"Llama-3-8B", 4096, 32, 32, 8, 14336, 128256}, {"Llama-2-13B", 5120, 40, 40, 40, 13824, 32000},
            {"Code-Llama-34B", 8192, 48, 64, 8, 22016, 32000}, {"Llama-3-70B", 8192, 80, 64, 8, 28672, 128256}};

    /**
     * For each method, the estimate of one rank at 1 x 512 tokens with checkpointing for public
     * Llama shapes, and the largest that fits 24 GB (this machine): the estimator is within 15% of
     * measured peaks (the method rows), so this is what would run here.
     */
    static void largest() throws Exception {
        String[][] methods = {{"full AdamW, bf16", "finetuning_type: full\nbf16: true"},
                {"full, pure_bf16", "finetuning_type: full\npure_bf16: true"},
                {"LoRA r 8, bf16 base", "finetuning_type: lora\nbf16: true"},
                {"freeze 2 layers, bf16", "finetuning_type: freeze\nbf16: true"},
                {"GaLore r 16, bf16", "finetuning_type: full\nuse_galore: true\nbf16: true"},
                {"BAdam layer, bf16", "finetuning_type: full\nuse_badam: true\nbf16: true"}};
        StringBuilder head = new StringBuilder("| method (1 x 512 tokens, checkpointing) |");
        StringBuilder rule = new StringBuilder("| --- |");
        for (Object[] shape : SHAPES) {
            head.append(' ').append(shape[0]).append(" GB |");
            rule.append(" --- |");
        }
        System.out.println(head.append(" largest that fits 24 GB |"));
        System.out.println(rule.append(" --- |"));
        for (String[] m : methods) {
            StringBuilder row = new StringBuilder("| " + m[0] + " |");
            String fits = "none";
            for (Object[] shape : SHAPES) {
                Path dir = ROOT.resolve("shape-" + shape[0]);
                Files.createDirectories(dir);
                Files.writeString(dir.resolve("config.json"), String.format("{\"model_type\": \"llama\", "
                        + "\"hidden_size\": %d, \"num_hidden_layers\": %d, \"num_attention_heads\": %d, "
                        + "\"num_key_value_heads\": %d, \"intermediate_size\": %d, \"vocab_size\": %d, "
                        + "\"rope_theta\": 500000.0, \"torch_dtype\": \"bfloat16\"}", shape[1], shape[2], shape[3],
                        shape[4], shape[5], shape[6]));
                Path yaml = dir.resolve("estimate.yaml");
                Files.writeString(yaml, "model_name_or_path: " + dir + "\ntemplate: empty\ndataset: x\noutput_dir: o\n"
                        + "do_train: true\ncutoff_len: 512\nper_device_train_batch_size: 1\n" + m[1] + "\n");
                long bytes = MemoryEstimate.of(SftConfig.load(yaml, List.of()), ModelConfig.load(dir)).total();
                row.append(String.format(" %.1f |", bytes / 1073741824.0));
                if (bytes <= 24L << 30) {
                    fits = (String) shape[0];
                }
            }
            System.out.println(row.append(' ').append(fits).append(" |"));
        }
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
