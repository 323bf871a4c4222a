package dev.sparksft.train;

import static dev.sparksft.train.ModelComparison.floats;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.sparksft.TestYaml;
import dev.sparksft.UserError;
import dev.sparksft.config.SftConfig;
import dev.sparksft.data.SyntheticTasks;
import dev.sparksft.data.TokenizedExample;
import dev.sparksft.dist.Rendezvous;
import dev.sparksft.dist.World;
import dev.sparksft.model.CausalLm;
import dev.sparksft.model.TinyModel;
import dev.sparksft.run.RunData;
import dev.sparksft.runtime.Torch;
import dev.sparksft.tokenizer.Tokenizer;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The ASFT loss in the training loop, on the tiny Llama of the other distributed tests (4 steps,
 * learning rate 1e-2, float32, no shuffling):
 * <ul>
 *   <li>the first step equals DFT's (the reference is the starting model, so the KL is 0 and its
 *       gradient 0 up to rounding): the same loss bit for bit, the weights after an SGD step within
 *       1e-7; later steps differ;</li>
 *   <li>2 ranks x 1 accumulation step equal 1 process x 2 accumulation steps on the same global
 *       batch (AdamW), and 1 x 1 with twice the batch equals 1 x 2 (SGD, see the test): per-step
 *       losses within 1e-5 (relative), trained tensors within 1e-4 of how far training moved them
 *       (DistributedMethodsTest's float32 tolerances), for full, freeze and LoRA, with and without
 *       activation checkpointing, under ZeRO stage 2 and (LoRA) stage 3;</li>
 *   <li>a run resumed from its step-2 checkpoint ends where the uninterrupted one does (the reference
 *       is read from model_name_or_path again, not from the checkpoint);</li>
 *   <li>ZeRO stage 3 with trained model weights is refused by name.</li>
 * </ul>
 */
class AsftTrainingTest {
    static final Device CPU = new Device(torch.DeviceType.CPU);
    static final Duration TIMEOUT = Duration.ofSeconds(60);
    @TempDir
    static Path shared;
    static Path model;
    static Path data;

    record Run(Map<String, float[]> weights, List<Double> losses) {}

    @BeforeAll
    static void tinyModelAndData() throws Exception {
        Torch.load(1);
        model = shared.resolve("model");
        TinyModel.write(new TinyModel.Options("llama", model, 0, 32, 2, 4, 2, 64, null, 0, 0));
        data = shared.resolve("data");
        SyntheticTasks.write(SyntheticTasks.Task.SORT, data.resolve("train.jsonl"), 40, 6, 1);
    }

    static SftConfig config(Path dir, String tag, String method, int perDevice, int gradAccum) throws Exception {
        Path f = dir.resolve(tag + ".yaml");
        Files.writeString(f, TestYaml.withExtra("model_name_or_path: " + model + "\ntemplate: qwen3_nothink\n"
                + "dataset: train.jsonl\ndataset_dir: " + data + "\ncutoff_len: 32\ndo_train: true\noutput_dir: "
                + dir.resolve("out-" + tag) + "\noverwrite_output_dir: true\nper_device_train_batch_size: " + perDevice
                + "\ngradient_accumulation_steps: " + gradAccum + "\nmax_steps: 4\nlearning_rate: 1.0e-2\n"
                + "logging_steps: 1\nsave_strategy: \"no\"\nnum_threads: 1\ndisable_shuffling: true\n",
                method.replace(";", "\n") + "\n"));
        return SftConfig.load(f, List.of());
    }

    /** LLaMA-Factory's ds_z2_config.json (test resources) with its stage set to {@code stage}. */
    static String deepspeed(Path dir, int stage) throws Exception {
        String json;
        try (InputStream in = AsftTrainingTest.class.getResourceAsStream("/deepspeed/ds_z2_config.json")) {
            json = new String(in.readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
        }
        Path f = dir.resolve("stage" + stage + ".json");
        Files.writeString(f, json.replaceFirst("\"stage\": \\d", "\"stage\": " + stage));
        return "deepspeed: " + f;
    }

    static Run train(SftConfig config, World world, Path outDir, Path resume) throws Exception {
        try (Tokenizer raw = Tokenizer.load(model)) {
            RunData d = RunData.load(config, raw);
            List<TokenizedExample> train = d.trainExamples();
            CausalLm m = Models.forTraining(config, model, resume, null, d.tokenizer().vocabSize(), CPU);
            Outputs outputs = world.isMain() ? Outputs.prepare(outDir, model, true, resume != null)
                    : Outputs.open(outDir, model);
            TrainingSetup setup = TrainingSetup.of(config, m, train.size(), world, model);
            Trainer trainer = new Trainer(config.training(), m, setup, train, List.of(), world, d.tokenizer().padId(),
                    outputs);
            trainer.train(resume == null ? null : Checkpoints.load(resume));
            setup.sharding().gatherAll();   // ZeRO 3: the whole adapter to compare
            Map<String, float[]> out = new LinkedHashMap<>();
            (m.lora() != null ? m.lora().tensors() : m.weights().tensors())
                    .forEach((n, t) -> out.put(n, floats(t.to(torch.ScalarType.Float).contiguous())));
            List<Double> losses = new ArrayList<>();
            for (JsonNode h : trainer.log().history()) {
                if (h.has("loss")) {
                    losses.add(h.get("loss").asDouble());
                }
            }
            return new Run(out, losses);
        }
    }

    static List<Run> twoRanks(SftConfig config, Path dir) throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(2);
        List<Run> ranks = new ArrayList<>();
        try (Rendezvous rv = Rendezvous.host("127.0.0.1", 2, TIMEOUT)) {
            List<Future<Run>> futures = new ArrayList<>();
            for (int r = 0; r < 2; r++) {
                int rank = r;
                futures.add(pool.submit(() -> {
                    try (World w = World.join(rank, 2, rv.address(), "127.0.0.1", CPU, TIMEOUT)) {
                        return train(config, w, dir.resolve("rank" + rank), null);
                    }
                }));
            }
            for (Future<Run> f : futures) {
                ranks.add(f.get());
            }
        } finally {
            pool.shutdownNow();
        }
        return ranks;
    }

    @Test
    void theFirstStepIsDftsExactly(@TempDir Path dir) throws Exception {
        // plain SGD, so the weights show the gradient itself: AdamW's first step, lr g / (|g| + eps), would turn
        // the rounding of near-zero gradients into visible weight differences
        String oneStep = "finetuning_type: full;max_steps: 1;optim: sgd;learning_rate: 1.0";
        Run dft = train(config(dir, "dft", oneStep + ";use_dft_loss: true", 4, 2), World.single(), dir.resolve("d"), null);
        Run asft = train(config(dir, "asft", oneStep + ";use_asft_loss: true;asft_alpha: 0.5", 4, 2), World.single(),
                dir.resolve("a"), null);
        assertEquals(dft.losses(), asft.losses());   // KL_t = sum q (log q - log p) with log q == log p: exactly 0
        // its gradient alpha (p - q) is 0 up to rounding (log_softmax's backward multiplies p by sum(q), 1 within
        // an ulp): the weights after the step agree within a few float32 ulps
        for (String name : dft.weights().keySet()) {
            assertArrayEquals(dft.weights().get(name), asft.weights().get(name), 1e-7f, name);
        }
        // after the first update the model has moved from the reference: the KL term shows
        Run dft4 = train(config(dir, "dft4", "finetuning_type: full;use_dft_loss: true", 4, 2), World.single(),
                dir.resolve("d4"), null);
        Run asft4 = train(config(dir, "asft4", "finetuning_type: full;use_asft_loss: true;asft_alpha: 0.5", 4, 2),
                World.single(), dir.resolve("a4"), null);
        System.out.println("ASFT vs DFT per-step losses: " + asft4.losses() + " vs " + dft4.losses());
        assertEquals(dft4.losses().get(0), asft4.losses().get(0));
        assertTrue(Math.abs(asft4.losses().get(3) - dft4.losses().get(3)) > 1e-6, "step 4 must see the KL term");
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', value = {
            "full                   | finetuning_type: full",
            "full, no checkpointing | finetuning_type: full;disable_gradient_checkpointing: true",
            "freeze                 | finetuning_type: freeze;freeze_trainable_layers: 1",
            "lora                   | finetuning_type: lora;lora_rank: 4",
            "lora + embed_tokens    | finetuning_type: lora;lora_rank: 4;additional_target: embed_tokens",
            "full, ZeRO 2           | finetuning_type: full;ZERO2",
            "lora, ZeRO 3           | finetuning_type: lora;lora_rank: 4;ZERO3"})
    void twoRanksAndAccumulationTrainLikeOneBatch(String method, String yaml, @TempDir Path dir) throws Exception {
        String m = yaml.replace("ZERO2", deepspeed(dir, 2)).replace("ZERO3", deepspeed(dir, 3))
                + ";use_asft_loss: true;asft_alpha: 0.5";
        // 2 ranks run the accumulated run's micro-batches (the same shapes): AdamW, float32 noise only
        Run accumulated = train(config(dir, "ga2", m, 4, 2), World.single(), dir.resolve("ga2"), null);
        List<Run> ranks = twoRanks(config(dir, "ws2", m, 4, 1), dir);
        compare(method + ", rank 0", accumulated, ranks.get(0), start(config(dir, "ga2", m, 4, 2)), 1e-4);
        compare(method + ", rank 1", accumulated, ranks.get(1), start(config(dir, "ga2", m, 4, 2)), 1e-4);
        // one batch of 8 pads to other lengths, so its matmuls sum in another order; AdamW's division by
        // the running RMS amplifies that noise in the weights (measured: ASFT 2.5e-3 of the update, plain
        // cross entropy 2.9e-4), so this comparison takes plain SGD, which shows the loss's own exactness
        String sgd = m + ";optim: sgd;learning_rate: 1.0";
        Run accumulatedSgd = train(config(dir, "ga2-sgd", sgd, 4, 2), World.single(), dir.resolve("ga2-sgd"), null);
        Run oneBatchSgd = train(config(dir, "bs8-sgd", sgd, 8, 1), World.single(), dir.resolve("bs8-sgd"), null);
        compare(method + ", one batch of 8 (SGD)", accumulatedSgd, oneBatchSgd, start(config(dir, "ga2", m, 4, 2)), 1e-4);
    }

    /** The tensors a run starts from (the adapter's for LoRA). */
    static Map<String, float[]> start(SftConfig c) throws Exception {
        Map<String, float[]> start = new LinkedHashMap<>();
        try (Tokenizer raw = Tokenizer.load(model)) {
            CausalLm init = Models.forTraining(c, model, null, null, raw.vocabSize(), CPU);
            (init.lora() != null ? init.lora().tensors() : init.weights().tensors())
                    .forEach((n, t) -> start.put(n, floats(t.to(torch.ScalarType.Float).contiguous())));
        }
        return start;
    }

    /** Per-step losses within 1e-5 (relative); weights within {@code tolerance} of the largest update. */
    static void compare(String what, Run want, Run got, Map<String, float[]> start, double tolerance) {
        double update = 0;
        double diff = 0;
        for (String name : want.weights().keySet()) {
            float[] a = want.weights().get(name);
            float[] b = got.weights().get(name);
            float[] x0 = start.get(name);
            for (int i = 0; i < a.length; i++) {
                update = Math.max(update, Math.abs(a[i] - x0[i]));
                diff = Math.max(diff, Math.abs(a[i] - b[i]));
            }
        }
        System.out.printf("ASFT %-40s max |diff| / max update = %.2e (update %.3g)%n", what, diff / update, update);
        assertTrue(update > 1e-4, what + ": training must move the weights, moved " + update);
        assertEquals(4, got.losses().size(), what);
        for (int s = 0; s < 4; s++) {
            double l = want.losses().get(s);
            assertEquals(l, got.losses().get(s), 1e-5 * Math.abs(l), what + ", step " + (s + 1));
        }
        assertTrue(diff / update < tolerance, what + ": differs by " + diff / update + " of the update");
    }

    @Test
    void aResumedRunEndsWhereTheUninterruptedOneDoes(@TempDir Path dir) throws Exception {
        String m = "finetuning_type: full;use_asft_loss: true;asft_alpha: 0.5";
        Run whole = train(config(dir, "whole", m, 4, 2), World.single(), dir.resolve("whole"), null);
        // the run that is interrupted: its step-2 checkpoint (a resume checks max_steps, so it is a 4-step run's)
        Path full = dir.resolve("saved");
        train(config(dir, "saved", m + ";save_strategy: steps;save_steps: 2", 4, 2), World.single(), full, null);
        Run resumed = train(config(dir, "resumed", m, 4, 2), World.single(), dir.resolve("resumed"),
                full.resolve("checkpoint-2"));
        assertEquals(whole.losses().subList(2, 4), resumed.losses().subList(resumed.losses().size() - 2,
                resumed.losses().size()));
        for (String name : whole.weights().keySet()) {
            assertArrayEquals(whole.weights().get(name), resumed.weights().get(name), 0f, name);
        }
    }

    @Test
    void zeroStage3WithTrainedModelWeightsIsRefused(@TempDir Path dir) throws Exception {
        SftConfig c = config(dir, "z3", "finetuning_type: full;use_asft_loss: true;" + deepspeed(dir, 3), 4, 1);
        try (Tokenizer raw = Tokenizer.load(model)) {
            CausalLm m = Models.forTraining(c, model, null, null, raw.vocabSize(), CPU);
            UserError e = assertThrows(UserError.class, () -> TrainingSetup.of(c, m, 40, World.single(), model));
            assertTrue(e.getMessage().contains("use_asft_loss under deepspeed ZeRO stage 3"), e.getMessage());
            assertTrue(e.getMessage().contains("stage 2"), e.getMessage());
        }
    }
}
