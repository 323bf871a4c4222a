package dev.sparksft.dist;

import static dev.sparksft.train.ModelComparison.floats;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.sparksft.config.SftConfig;
import dev.sparksft.data.SyntheticTasks;
import dev.sparksft.data.TokenizedExample;
import dev.sparksft.model.CausalLm;
import dev.sparksft.model.Safetensors;
import dev.sparksft.model.TinyModel;
import dev.sparksft.run.RunData;
import dev.sparksft.runtime.Torch;
import dev.sparksft.tokenizer.Tokenizer;
import dev.sparksft.train.Checkpoints;
import dev.sparksft.train.Models;
import dev.sparksft.train.Outputs;
import dev.sparksft.train.Trainer;
import dev.sparksft.train.TrainingSetup;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * ZeRO stages 1, 2 and 3 (deepspeed: LLaMA-Factory's ds_z*_config.json, stage rewritten) on Gloo
 * ranks as threads against one process on the same global batch (world_size ranks x 4 examples
 * against 4 x world_size accumulation steps), 4 steps: per-step losses within 1e-5, trained
 * tensors within 1e-4 of how far training moved them (DistributedMethodsTest's float32
 * tolerance), and every rank holding the same model after the owners' broadcasts. A stage-2
 * checkpoint written by 2 ranks resumes exactly on 2 ranks and on 1. Stage 3 the same (AdamW at 2
 * and 4 ranks, LoRA, a step where one rank has no data for a micro-step, a checkpoint resumed on 2
 * and on 1), and after training every rank holds the data of its own trainable tensors only.
 */
class ZeroTest {
    static final Device CPU = new Device(torch.DeviceType.CPU);
    static final Duration TIMEOUT = Duration.ofSeconds(60);
    @TempDir
    static Path shared;
    static Path model;
    static Path data;
    static final Map<String, Run> SINGLE = new LinkedHashMap<>();   // one-process references, by method and world_size

    /**
     * A run's trained tensors and per-step losses (rank 0's; the other ranks' tensors in
     * {@code replicas}), and its logged eval losses (with val_size and eval_strategy: steps).
     */
    record Run(Map<String, float[]> weights, List<Double> losses, List<Map<String, float[]>> replicas,
               List<Double> evalLosses) {}

    @BeforeAll
    static void tinyModelAndData() throws Exception {
        Torch.load(1);
        model = shared.resolve("model");
        TinyModel.write(new TinyModel.Options("llama", model, 0, 32, 2, 4, 2, 64, null, 0, 0));
        data = shared.resolve("data");
        SyntheticTasks.write(SyntheticTasks.Task.SORT, data.resolve("train.jsonl"), 40, 6, 1);
    }

    /** LLaMA-Factory's DeepSpeed file {@code name} (a copy in test resources), with its stage set to {@code stage}. */
    static Path deepspeed(Path dir, String name, int stage) throws Exception {
        String json;
        try (InputStream in = ZeroTest.class.getResourceAsStream("/deepspeed/" + name)) {
            json = new String(in.readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
        }
        Path f = dir.resolve("stage" + stage + "-" + name);
        Files.writeString(f, json.replaceFirst("\"stage\": \\d", "\"stage\": " + stage));
        return f;
    }

    static SftConfig config(Path dir, String tag, String method, int gradAccum, String extra) throws Exception {
        return config(dir, tag, method, 4, gradAccum, extra);
    }

    static SftConfig config(Path dir, String tag, String method, int perDevice, int gradAccum, String extra)
            throws Exception {
        Path f = dir.resolve(tag + ".yaml");
        Files.writeString(f, dev.sparksft.TestYaml.withExtra("model_name_or_path: " + model + "\ntemplate: qwen3_nothink\ndataset: train.jsonl\n"
                + "dataset_dir: " + data + "\ncutoff_len: 32\ndo_train: true\noutput_dir: " + dir.resolve("out-" + tag)
                + "\noverwrite_output_dir: true\nper_device_train_batch_size: " + perDevice
                + "\ngradient_accumulation_steps: " + gradAccum
                + "\nmax_steps: 4\nlearning_rate: 1.0e-2\nlogging_steps: 1\nnum_threads: 1\ndisable_shuffling: true\n"
                + method.replace(";", "\n") + "\n", extra));
        return SftConfig.load(f, List.of());
    }

    /** Trains {@code config} on {@code world} (from {@code resume} when not null); the trained tensors and losses. */
    static Run train(SftConfig config, World world, Path outDir, Path resume) {
        Path base = Path.of(config.model().modelNameOrPath());
        try (Tokenizer raw = Tokenizer.load(base)) {
            RunData d = RunData.load(config, raw);
            List<TokenizedExample> train = d.trainExamples();
            CausalLm m = Models.forTraining(config, base, resume, null, d.tokenizer().vocabSize(), CPU);
            Outputs outputs = world.isMain() ? Outputs.prepare(outDir, base, true, false) : Outputs.open(outDir, base);
            TrainingSetup setup = TrainingSetup.of(config.training(), config.finetuning(), m, train.size(), world);
            List<TokenizedExample> eval = d.eval().isEmpty() ? List.of() : d.encode(d.eval());
            Trainer trainer = new Trainer(config.training(), m, setup, train, eval, world, d.tokenizer().padId(),
                    outputs);
            trainer.train(resume == null ? null : Checkpoints.load(resume));
            String notReleased = "";
            if (setup.sharding().shardsParameters()) {
                notReleased = heldBetweenUses(setup, m, world);
                setup.sharding().gatherAll();   // every rank, before any of them can fail: the whole model to compare
            }
            assertEquals("", notReleased, "rank " + world.rank() + " after training under ZeRO 3");
            Map<String, float[]> out = new LinkedHashMap<>();
            (m.adapter() != null ? m.adapter().tensors() : m.weights().tensors())
                    .forEach((n, t) -> out.put(n, floats(t.to(torch.ScalarType.Float).contiguous())));
            List<Double> losses = new ArrayList<>();
            List<Double> evalLosses = new ArrayList<>();
            for (JsonNode h : trainer.log().history()) {
                if (h.has("loss")) {
                    losses.add(h.get("loss").asDouble());
                }
                if (h.has("eval_loss")) {
                    evalLosses.add(h.get("eval_loss").asDouble());
                }
            }
            return new Run(out, losses, List.of(), evalLosses);
        } catch (Exception e) {
            throw new RuntimeException(e);
        }
    }

    /**
     * Under ZeRO 3 between uses: "" when this rank holds the whole data of the trainable tensors it
     * owns and of every frozen tensor, and a (0,) tensor without gradient for each trainable one
     * another rank owns; else what is wrong. Prints the count.
     */
    static String heldBetweenUses(TrainingSetup setup, CausalLm m, World world) {
        StringBuilder wrong = new StringBuilder();
        long heldElements = 0;
        long released = 0;
        for (Map.Entry<String, Tensor> e : setup.trainable().entrySet()) {
            Tensor t = e.getValue();
            boolean mine = setup.sharding().partition().owner(e.getKey()) == world.rank();
            if (mine) {
                heldElements += t.numel();
                if (t.numel() == 0) {
                    wrong.append(e.getKey()).append(" is its own but empty; ");
                }
            } else if (t.numel() != 0 || t.grad().defined()) {
                wrong.append(e.getKey()).append(" is another rank's but holds ").append(t.numel())
                        .append(" elements").append(t.grad().defined() ? " and a gradient" : "").append("; ");
            } else {
                released++;
            }
        }
        for (Map.Entry<String, Tensor> e : m.weights().tensors().entrySet()) {
            if (!setup.trainable().containsKey(e.getKey()) && e.getValue().numel() == 0) {
                wrong.append(e.getKey()).append(" is frozen (replicated) but empty; ");
            }
        }
        System.out.printf("ZeRO-3 rank %d between uses: holds %d elements of its own %d trainable tensors, %d other "
                        + "ranks' tensors with numel 0 (of %d trainable)%n", world.rank(), heldElements,
                setup.sharding().partition().owned(world.rank()).size(), released, setup.trainable().size());
        return wrong.toString();
    }

    static Run onRanks(int size, SftConfig config, Path dir, Path resume) throws Exception {
        if (size == 1) {
            return train(config, World.single(), dir.resolve("rank0"), resume);
        }
        List<Run> runs = WorldTest.onRanks(size, TIMEOUT, w -> train(config, w, dir.resolve("rank" + w.rank()), resume));
        List<Map<String, float[]>> replicas = new ArrayList<>();
        runs.forEach(r -> replicas.add(r.weights()));
        return new Run(runs.get(0).weights(), runs.get(0).losses(), replicas, runs.get(0).evalLosses());
    }

    static Run single(Path dir, String method, int worldSize) throws Exception {
        String key = method + "@" + worldSize;
        if (!SINGLE.containsKey(key)) {
            Path d = Files.createDirectories(shared.resolve("single-" + SINGLE.size()));
            SINGLE.put(key, onRanks(1, config(d, "single", method, worldSize, ""), d, null));
        }
        return SINGLE.get(key);
    }

    static Map<String, float[]> initial(SftConfig config) throws Exception {
        Path base = Path.of(config.model().modelNameOrPath());
        try (Tokenizer raw = Tokenizer.load(base)) {
            CausalLm m = Models.forTraining(config, base, null, null, raw.vocabSize(), CPU);
            Map<String, float[]> out = new LinkedHashMap<>();
            (m.adapter() != null ? m.adapter().tensors() : m.weights().tensors())
                    .forEach((n, t) -> out.put(n, floats(t.to(torch.ScalarType.Float).contiguous())));
            return out;
        }
    }

    /** Asserts equal losses (1e-5) and weights (1e-4 of the update), and identical replicas; returns the relative difference. */
    static double assertSame(String what, Run reference, Run got, Map<String, float[]> start) {
        assertEquals(reference.losses().size(), got.losses().size(), what + ": logged steps");
        double lossDiff = 0;
        for (int i = 0; i < got.losses().size(); i++) {
            lossDiff = Math.max(lossDiff, Math.abs(reference.losses().get(i) - got.losses().get(i)));
        }
        double diff = 0;
        double update = 0;
        double apart = 0;
        for (String name : reference.weights().keySet()) {
            float[] a = reference.weights().get(name);
            float[] b = got.weights().get(name);
            float[] x0 = start.get(name);
            for (int i = 0; i < a.length; i++) {
                diff = Math.max(diff, Math.abs(a[i] - b[i]));
                update = Math.max(update, Math.abs(a[i] - x0[i]));
                for (Map<String, float[]> replica : got.replicas()) {
                    apart = Math.max(apart, Math.abs(b[i] - replica.get(name)[i]));
                }
            }
        }
        System.out.printf("%-28s max |loss diff| = %.2e, max |weights diff| / max update = %.2e (update %.3g)%n", what,
                lossDiff, diff / update, update);
        assertTrue(update > 1e-4, what + ": training must move the weights, moved " + update);
        assertTrue(lossDiff < 1e-5, what + ": losses differ by " + lossDiff + ": " + reference.losses() + " vs "
                + got.losses());
        assertEquals(0, apart, 0, what + ": every rank must hold the same model after the broadcasts, apart by " + apart);
        assertTrue(diff / update < 1e-4, what + ": weights differ by " + diff / update + " of the update");
        return diff / update;
    }

    @ParameterizedTest(name = "AdamW, ZeRO {0}, world_size {1}")
    @CsvSource({"1, 2", "2, 2", "1, 4", "2, 4"})
    void adamwShardedEqualsOneProcess(int stage, int worldSize, @TempDir Path dir) throws Exception {
        String method = "finetuning_type: full";
        Run reference = single(dir, method, worldSize);
        SftConfig zero = config(dir, "zero", method, 1, "deepspeed: " + deepspeed(dir, "ds_z2_config.json", stage) + "\n");
        Run got = onRanks(worldSize, zero, dir, null);
        assertSame("AdamW ZeRO-" + stage + " x" + worldSize, reference, got, initial(zero));
    }

    @ParameterizedTest(name = "{0}, ZeRO 2, world_size 2")
    @CsvSource(delimiter = '|', value = {
            "lora+        | finetuning_type: lora;lora_rank: 4;loraplus_lr_ratio: 4",
            "oft          | finetuning_type: oft;oft_block_size: 8",
            "apollo       | finetuning_type: full;use_apollo: true;apollo_rank: 4;apollo_update_interval: 2",
            "galore       | finetuning_type: full;use_galore: true;galore_rank: 4;galore_update_interval: 2",
            "adam-mini    | finetuning_type: full;use_adam_mini: true",
            "badam ratio  | finetuning_type: full;use_badam: true;badam_mode: ratio;badam_update_ratio: 0.3"})
    void methodsShardedAtStageTwoEqualOneProcess(String name, String method, @TempDir Path dir) throws Exception {
        Run reference = single(dir, method, 2);
        // the offload file: on a CPU run the optimizer is already on the host, so it trains the same
        SftConfig zero = config(dir, "zero", method, 1, "deepspeed: " + deepspeed(dir, "ds_z2_offload_config.json", 2) + "\n");
        Run got = onRanks(2, zero, dir, null);
        assertSame(name + " ZeRO-2 x2", reference, got, initial(zero));
    }

    @ParameterizedTest(name = "QLoRA, ZeRO {0}, world_size 2")
    @CsvSource({"2", "3"})
    void qloraShardsTheAdapterAndKeepsTheFourBitBaseWholeOnEveryRank(int stage, @TempDir Path dir) throws Exception {
        String method = "finetuning_type: lora;lora_rank: 4;quantization_bit: 4";
        Run reference = single(dir, method, 2);
        SftConfig zero = config(dir, "zero", method, 1, "deepspeed: " + deepspeed(dir, "ds_z" + stage + "_config.json", stage)
                + "\n");
        Run got = onRanks(2, zero, dir, null);
        assertSame("QLoRA ZeRO-" + stage + " x2", reference, got, initial(zero));
    }

    /**
     * A ZeRO-2 run on 2 ranks saves checkpoint-2 (rank 0 gathers the optimizer state into one
     * file, the same names and values as one process writes); resuming it on 2 ranks and on 1
     * gives the uninterrupted run's steps 3 and 4.
     */
    @Test
    void aStageTwoCheckpointResumesExactlyOnTwoRanksAndOnOne(@TempDir Path dir) throws Exception {
        String method = "finetuning_type: full";
        Path ds = deepspeed(dir, "ds_z2_config.json", 2);
        String save = "save_strategy: steps\nsave_steps: 2\n";
        Path one = Files.createDirectories(dir.resolve("one"));
        SftConfig reference = config(one, "ref", method, 2, save);
        Run uninterrupted = onRanks(1, reference, one, null);
        Path two = Files.createDirectories(dir.resolve("two"));
        Run sharded = onRanks(2, config(two, "zero", method, 1, save + "deepspeed: " + ds + "\n"), two, null);
        Map<String, float[]> start = initial(reference);
        assertSame("ZeRO-2 x2 with checkpoints", uninterrupted, sharded, start);

        Path written = two.resolve("rank0/checkpoint-2");
        Map<String, Tensor> gathered = optimizerState(written);
        Map<String, Tensor> replicated = optimizerState(one.resolve("rank0/checkpoint-2"));
        assertEquals(List.copyOf(replicated.keySet()), List.copyOf(gathered.keySet()),
                "the gathered optimizer.safetensors must hold the replicated names in the replicated order");
        double stateDiff = 0;
        for (String k : replicated.keySet()) {
            float[] a = floats(replicated.get(k));
            float[] b = floats(gathered.get(k));
            for (int i = 0; i < a.length; i++) {
                stateDiff = Math.max(stateDiff, Math.abs(a[i] - b[i]) / (Math.abs(a[i]) + 1e-6));
            }
        }
        System.out.printf("gathered optimizer state: max relative difference %.2e over %d tensors%n", stateDiff,
                gathered.size());
        assertTrue(stateDiff < 1e-3, "the gathered optimizer state differs from one process's by " + stateDiff);

        Path again = Files.createDirectories(dir.resolve("again2"));
        Run resumed2 = onRanks(2, config(again, "zero", method, 1, save + "deepspeed: " + ds + "\n"), again, written);
        assertSame("resumed ZeRO-2 x2 -> x2", uninterrupted, resumed2, start);
        Path single = Files.createDirectories(dir.resolve("again1"));
        Run resumed1 = onRanks(1, config(single, "zero", method, 2, save + "deepspeed: " + ds + "\n"), single, written);
        assertSame("resumed ZeRO-2 x2 -> x1", uninterrupted, resumed1, start);
    }

    static Map<String, Tensor> optimizerState(Path checkpoint) throws Exception {
        Safetensors.Header header = Safetensors.readHeader(checkpoint.resolve(Checkpoints.OPTIMIZER_FILE));
        Map<String, Tensor> out = new LinkedHashMap<>();
        for (Safetensors.Entry e : header.entries().values()) {
            out.put(e.name(), Safetensors.readTensor(header, e));
        }
        return out;
    }

    @ParameterizedTest(name = "AdamW, ZeRO 3, world_size {0}")
    @CsvSource({"2", "4"})
    void adamwAtStageThreeEqualsOneProcess(int worldSize, @TempDir Path dir) throws Exception {
        String method = "finetuning_type: full";
        Run reference = single(dir, method, worldSize);
        // LLaMA-Factory's ds_z3_config.json unchanged
        SftConfig zero = config(dir, "zero", method, 1, "deepspeed: " + deepspeed(dir, "ds_z3_config.json", 3) + "\n");
        Run got = onRanks(worldSize, zero, dir, null);
        assertSame("AdamW ZeRO-3 x" + worldSize, reference, got, initial(zero));
    }

    /** Gemma's extra norms and its soft-capped eager attention shard like any other tensors. */
    @Test
    void aGemma2ModelAtStageThreeEqualsOneProcess(@TempDir Path dir) throws Exception {
        Path gemma = shared.resolve("gemma2");
        TinyModel.write(new TinyModel.Options("gemma2", gemma, 0, 32, 2, 4, 2, 64, null, 0, 0));
        String method = "finetuning_type: full";
        String onGemma = "model_name_or_path: " + gemma + "\n";
        Path single = Files.createDirectories(dir.resolve("single"));
        Run reference = onRanks(1, config(single, "single", method, 2, onGemma), single, null);
        SftConfig zero = config(dir, "zero", method, 1, onGemma + "deepspeed: " + deepspeed(dir, "ds_z3_config.json", 3) + "\n");
        Run got = onRanks(2, zero, dir, null);
        assertSame("gemma2 AdamW ZeRO-3 x2", reference, got, initial(zero));
    }

    /** Phi-3's fused qkv_proj / gate_up_proj shard like any other tensors; OFT's all finds them. */
    @ParameterizedTest(name = "phi3 {0} ZeRO 3 x2")
    @CsvSource({"finetuning_type: full", "finetuning_type: oft;oft_block_size: 8;oft_target: all"})
    void aPhi3ModelAtStageThreeEqualsOneProcess(String method, @TempDir Path dir) throws Exception {
        Path phi3 = shared.resolve("phi3");
        TinyModel.write(new TinyModel.Options("phi3", phi3, 0, 32, 2, 4, 2, 64, null, 0, 0));
        String onPhi3 = "model_name_or_path: " + phi3 + "\n";
        Path single = Files.createDirectories(dir.resolve("single"));
        Run reference = onRanks(1, config(single, "single", method, 2, onPhi3), single, null);
        SftConfig zero = config(dir, "zero", method, 1, onPhi3 + "deepspeed: " + deepspeed(dir, "ds_z3_config.json", 3) + "\n");
        Run got = onRanks(2, zero, dir, null);
        assertSame("phi3 " + method + " ZeRO-3 x2", reference, got, initial(zero));
    }

    /**
     * A mixture of experts (qwen3_moe in full at stage 3, mixtral's LoRA over every expert and
     * router at stage 2) on 2 ranks equals one process: routing is per token, so a rank's
     * micro-batch routes as it would in the one process's accumulation step.
     */
    @ParameterizedTest(name = "{0} ZeRO {1} x2")
    @CsvSource(delimiter = '|', value = {"qwen3_moe | 3 | finetuning_type: full",
            "mixtral | 2 | finetuning_type: lora;lora_rank: 4;lora_target: all"})
    void aMixtureOfExpertsModelShardedEqualsOneProcess(String arch, int stage, String method, @TempDir Path dir)
            throws Exception {
        Path moe = shared.resolve(arch);
        if (!Files.exists(moe.resolve("config.json"))) {
            TinyModel.write(new TinyModel.Options(arch, moe, 0, 32, 2, 4, 2, 64, null, 0, 0));
        }
        String onMoe = "model_name_or_path: " + moe + "\n";
        Path single = Files.createDirectories(dir.resolve("single"));
        Run reference = onRanks(1, config(single, "single", method, 2, onMoe), single, null);
        SftConfig zero = config(dir, "zero", method, 1, onMoe + "deepspeed: "
                + deepspeed(dir, "ds_z" + stage + "_config.json", stage) + "\n");
        Run got = onRanks(2, zero, dir, null);
        assertSame(arch + " ZeRO-" + stage + " x2", reference, got, initial(zero));
    }

    @Test
    void loraAtStageThreeEqualsOneProcess(@TempDir Path dir) throws Exception {
        String method = "finetuning_type: lora;lora_rank: 4;loraplus_lr_ratio: 4";
        Run reference = single(dir, method, 2);
        // the offload file: on a CPU run parameters and optimizer are already on the host
        SftConfig zero = config(dir, "zero", method, 1, "deepspeed: " + deepspeed(dir, "ds_z3_offload_config.json", 3)
                + "\n");
        Run got = onRanks(2, zero, dir, null);
        assertSame("LoRA+ ZeRO-3 x2", reference, got, initial(zero));
    }

    /** PiSSA's factors and residual are computed before sharding, the same on every rank. */
    @Test
    void pissaAtStageThreeEqualsOneProcess(@TempDir Path dir) throws Exception {
        String method = "finetuning_type: lora;lora_rank: 4;pissa_init: true;pissa_iter: 2;pissa_convert: true";
        Run reference = single(dir, method, 2);
        SftConfig zero = config(dir, "zero", method, 1, "deepspeed: " + deepspeed(dir, "ds_z3_config.json", 3) + "\n");
        Run got = onRanks(2, zero, dir, null);
        assertSame("PiSSA ZeRO-3 x2", reference, got, initial(zero));
    }

    @Test
    void oftAtStageThreeEqualsOneProcess(@TempDir Path dir) throws Exception {
        String method = "finetuning_type: oft;oft_block_size: 8";
        Run reference = single(dir, method, 2);
        // the offload file: on a CPU run parameters and optimizer are already on the host
        SftConfig zero = config(dir, "zero", method, 1, "deepspeed: " + deepspeed(dir, "ds_z3_offload_config.json", 3)
                + "\n");
        Run got = onRanks(2, zero, dir, null);
        assertSame("OFT ZeRO-3 x2", reference, got, initial(zero));
    }

    /**
     * 5 examples, 2 ranks x 2 per device x 2 accumulation steps (global batch 8): some rank has no
     * data for a micro-step, yet takes part in every gather and reduction of it (a mismatch would
     * hang the others until the timeout); the result equals one process with 4 accumulation steps.
     */
    @Test
    void aRankWithoutDataForAMicroStepStillTakesPartAtStageThree(@TempDir Path dir) throws Exception {
        String method = "finetuning_type: full";
        String five = "max_samples: 5\n";
        Path one = Files.createDirectories(dir.resolve("one"));
        SftConfig reference = config(one, "ref", method, 2, 4, five);
        Path two = Files.createDirectories(dir.resolve("two"));
        SftConfig zero = config(two, "zero", method, 2, 2, five + "deepspeed: " + deepspeed(dir, "ds_z3_config.json", 3)
                + "\n");
        int empty = 0;
        try (Tokenizer raw = Tokenizer.load(model)) {
            List<TokenizedExample> train = RunData.load(zero, raw).trainExamples();
            assertEquals(5, train.size());
            var plan = TrainingSetup.plan(train.size(), zero.training(), zero.finetuning(), 2);
            for (int rank = 0; rank < 2; rank++) {
                for (List<TokenizedExample> micro : new dev.sparksft.train.PlannedBatches(train, plan, rank, 2, 2, 2)
                        .step(0)) {
                    empty += micro.isEmpty() ? 1 : 0;
                }
            }
        }
        System.out.printf("partial step: %d of 4 (rank, micro-step) slots without data%n", empty);
        assertTrue(empty >= 1, "the plan must leave a rank without data for a micro-step");
        Run uninterrupted = onRanks(1, reference, one, null);
        Run got = onRanks(2, zero, two, null);
        assertSame("ZeRO-3 x2, partial step", uninterrupted, got, initial(reference));
    }

    /**
     * Gradients are released after every step, so a rank with no example in a whole step has none:
     * replicated (stage 0) and stage 1 still all-reduce the same tensors on every rank, its share
     * zeros. 5 examples, 2 ranks x 2 per device: the second step's only example is rank 0's.
     */
    @ParameterizedTest(name = "stage {0}")
    @CsvSource({"0", "1"})
    void aRankWithoutDataForAWholeStepContributesZeroGradients(int stage, @TempDir Path dir) throws Exception {
        String method = "finetuning_type: full";
        String five = "max_samples: 5\nmax_steps: 2\n";
        Path one = Files.createDirectories(dir.resolve("one"));
        SftConfig reference = config(one, "ref", method, 2, 2, five);   // the same micro-batches, in one process
        Path two = Files.createDirectories(dir.resolve("two"));
        SftConfig split = config(two, "split", method, 2, 1, five + (stage == 0 ? ""
                : "deepspeed: " + deepspeed(dir, "ds_z2_config.json", stage) + "\n"));
        Run uninterrupted = onRanks(1, reference, one, null);
        Run got = onRanks(2, split, two, null);
        assertSame("stage " + stage + " x2, a rank without data for step 2", uninterrupted, got, initial(reference));
    }

    @Test
    void aStageThreeCheckpointResumesExactlyOnTwoRanksAndOnOne(@TempDir Path dir) throws Exception {
        String method = "finetuning_type: full";
        Path ds = deepspeed(dir, "ds_z3_config.json", 3);
        String save = "save_strategy: steps\nsave_steps: 2\n";
        Path one = Files.createDirectories(dir.resolve("one"));
        SftConfig reference = config(one, "ref", method, 2, save);
        Run uninterrupted = onRanks(1, reference, one, null);
        Path two = Files.createDirectories(dir.resolve("two"));
        Run sharded = onRanks(2, config(two, "zero", method, 1, save + "deepspeed: " + ds + "\n"), two, null);
        Map<String, float[]> start = initial(reference);
        assertSame("ZeRO-3 x2 with checkpoints", uninterrupted, sharded, start);
        Path written = two.resolve("rank0/checkpoint-2");
        Path again = Files.createDirectories(dir.resolve("again2"));
        Run resumed2 = onRanks(2, config(again, "zero", method, 1, save + "deepspeed: " + ds + "\n"), again, written);
        assertSame("resumed ZeRO-3 x2 -> x2", uninterrupted, resumed2, start);
        Path single = Files.createDirectories(dir.resolve("again1"));
        Run resumed1 = onRanks(1, config(single, "zero", method, 2, save + "deepspeed: " + ds + "\n"), single, written);
        assertSame("resumed ZeRO-3 x2 -> x1", uninterrupted, resumed1, start);
    }

    /** Evaluation every 2 steps under ZeRO 3 gathers the whole model: 2 ranks score the eval set as one process does. */
    @Test
    void evaluationAtStageThreeScoresTheWholeModel(@TempDir Path dir) throws Exception {
        String method = "finetuning_type: full";
        String eval = "val_size: 8\neval_strategy: steps\neval_steps: 2\n";
        Path one = Files.createDirectories(dir.resolve("one"));
        SftConfig reference = config(one, "ref", method, 2, eval);
        Run uninterrupted = onRanks(1, reference, one, null);
        Path two = Files.createDirectories(dir.resolve("two"));
        Run sharded = onRanks(2, config(two, "zero", method, 1, eval + "deepspeed: "
                + deepspeed(dir, "ds_z3_config.json", 3) + "\n"), two, null);
        assertSame("ZeRO-3 x2 with evaluation", uninterrupted, sharded, initial(reference));
        assertEquals(2, uninterrupted.evalLosses().size(), "evaluations logged");
        assertEquals(uninterrupted.evalLosses().size(), sharded.evalLosses().size(), "evaluations logged at ZeRO 3");
        double diff = 0;
        for (int i = 0; i < sharded.evalLosses().size(); i++) {
            diff = Math.max(diff, Math.abs(uninterrupted.evalLosses().get(i) - sharded.evalLosses().get(i)));
        }
        System.out.printf("ZeRO-3 x2 eval_loss: max |diff| = %.2e over %d evaluations%n", diff,
                sharded.evalLosses().size());
        assertTrue(diff < 1e-5, "eval losses differ by " + diff + ": " + uninterrupted.evalLosses() + " vs "
                + sharded.evalLosses());
    }

    @Test
    void stageThreeWithoutActivationCheckpointingIsRefused(@TempDir Path dir) throws Exception {
        SftConfig config = config(dir, "nockpt", "finetuning_type: full", 1, "disable_gradient_checkpointing: true\n"
                + "deepspeed: " + deepspeed(dir, "ds_z3_config.json", 3) + "\n");
        try (Tokenizer raw = Tokenizer.load(model)) {
            CausalLm m = Models.forTraining(config, model, null, null, raw.vocabSize(), CPU);
            dev.sparksft.UserError e = org.junit.jupiter.api.Assertions.assertThrows(dev.sparksft.UserError.class,
                    () -> TrainingSetup.of(config.training(), config.finetuning(), m, 40, World.single(),
                            config.model().activationCheckpointing()));
            assertTrue(e.getMessage().contains("zero_optimization.stage: 3")
                    && e.getMessage().contains("disable_gradient_checkpointing is true"), e.getMessage());
        }
    }

    @Test
    void badamLayerModeIsRefusedUnderZero(@TempDir Path dir) throws Exception {
        SftConfig config = config(dir, "badam", "finetuning_type: full;use_badam: true", 1,
                "deepspeed: " + deepspeed(dir, "ds_z2_config.json", 1) + "\n");
        try (Tokenizer raw = Tokenizer.load(model)) {
            CausalLm m = Models.forTraining(config, model, null, null, raw.vocabSize(), CPU);
            dev.sparksft.UserError e = org.junit.jupiter.api.Assertions.assertThrows(dev.sparksft.UserError.class,
                    () -> TrainingSetup.of(config.training(), config.finetuning(), m, 40, World.single()));
            assertTrue(e.getMessage().contains("badam_mode: layer cannot run under deepspeed ZeRO stage 1")
                    && e.getMessage().contains("use badam_mode: ratio"), e.getMessage());
        }
    }
}
