package dev.sparksft.cli;

import dev.sparksft.model.TinyModel;
import static dev.sparksft.train.ModelComparison.floats;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparksft.config.SftConfig;
import dev.sparksft.data.SyntheticTasks;
import dev.sparksft.data.TokenizedExample;
import dev.sparksft.dist.Rendezvous;
import dev.sparksft.dist.World;
import dev.sparksft.model.CausalLm;
import dev.sparksft.runtime.Torch;
import dev.sparksft.tokenizer.Tokenizer;
import dev.sparksft.train.Models;
import dev.sparksft.train.Outputs;
import dev.sparksft.train.Trainer;
import dev.sparksft.train.TrainingSetup;
import dev.sparksft.run.RunData;
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
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Every fine-tuning method with world_size 2 (two Gloo ranks as threads, as Spark's local[2]
 * runs them) against one process on the same global batch (2 ranks x 4 against 4 x 2
 * accumulation steps), 4 optimizer steps: the trained tensors agree to a small fraction of how far
 * training moved them. Tolerances: 1e-4 for float32 methods (Adam's division by the running RMS
 * amplifies summation-order noise); 3e-2 where bfloat16 arithmetic rounds (Muon's Newton-Schulz,
 * bf16, pure_bf16).
 */
class DistributedMethodsTest {
    static final Device CPU = new Device(torch.DeviceType.CPU);
    @TempDir
    static Path shared;
    static Path model;
    static Path data;

    @BeforeAll
    static void tinyModelAndData() throws Exception {
        Torch.load(1);
        model = shared.resolve("model");
        TinyModel.write(new TinyModel.Options("llama", model, 0, 32, 2, 4, 2, 64, null, 0, 0));
        data = shared.resolve("data");
        SyntheticTasks.write(SyntheticTasks.Task.SORT, data.resolve("train.jsonl"), 40, 6, 1);
    }

    static SftConfig config(Path dir, String method, int gradAccum) throws Exception {
        Path f = dir.resolve("run-" + gradAccum + ".yaml");
        Files.writeString(f, "model_name_or_path: " + model + "\ntemplate: qwen3_nothink\ndataset: train.jsonl\n"
                + "dataset_dir: " + data + "\ncutoff_len: 32\ndo_train: true\noutput_dir: " + dir.resolve("out-" + gradAccum)
                + "\noverwrite_output_dir: true\nper_device_train_batch_size: 4\ngradient_accumulation_steps: " + gradAccum
                + "\nmax_steps: 4\nlearning_rate: 1.0e-2\nlogging_steps: 1\nsave_strategy: \"no\"\nnum_threads: 1\n"
                + "disable_shuffling: true\n" + method.replace(";", "\n") + "\n");
        return SftConfig.load(f, List.of());
    }

    /** The tensors a method trains, copied after {@code world}'s run. */
    static Map<String, float[]> train(SftConfig config, World world, Path outDir) throws Exception {
        Map<String, float[]> out = new LinkedHashMap<>();
        try (Tokenizer raw = Tokenizer.load(model)) {
            RunData d = RunData.load(config, raw);
            List<TokenizedExample> train = d.trainExamples();
            CausalLm m = Models.forTraining(config, model, null, null, d.tokenizer().vocabSize(), CPU);
            Outputs outputs = world.isMain() ? Outputs.prepare(outDir, model, true, false) : Outputs.open(outDir, model);
            TrainingSetup setup = TrainingSetup.of(config.training(), config.finetuning(), m, train.size(), world);
            new Trainer(config.training(), m, setup, train, List.of(), world, d.tokenizer().padId(), outputs).train(null);
            Map<String, Tensor> trained = new LinkedHashMap<>(m.weights().tensors());
            if (m.adapter() != null) {
                trained = m.adapter().tensors();
            }
            trained.forEach((n, t) -> out.put(n, floats(t.to(torch.ScalarType.Float).contiguous())));
        }
        return out;
    }

    static Map<String, float[]> initial(SftConfig config) throws Exception {
        try (Tokenizer raw = Tokenizer.load(model)) {
            CausalLm m = Models.forTraining(config, model, null, null, raw.vocabSize(), CPU);
            Map<String, float[]> out = new LinkedHashMap<>();
            (m.adapter() != null ? m.adapter().tensors() : m.weights().tensors())
                    .forEach((n, t) -> out.put(n, floats(t.to(torch.ScalarType.Float).contiguous())));
            return out;
        }
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', value = {
            "full         | 1e-4 | finetuning_type: full",
            "lora         | 1e-4 | finetuning_type: lora;lora_rank: 4",
            "lora+        | 1e-4 | finetuning_type: lora;lora_rank: 4;loraplus_lr_ratio: 4",
            "pissa        | 1e-4 | finetuning_type: lora;lora_rank: 4;pissa_init: true;pissa_iter: 2;pissa_convert: true",
            "pissa exact  | 1e-4 | finetuning_type: lora;lora_rank: 4;pissa_init: true;pissa_iter: -1",
            "oft          | 1e-4 | finetuning_type: oft;oft_block_size: 8",
            "galore       | 1e-4 | finetuning_type: full;use_galore: true;galore_rank: 4;galore_update_interval: 2",
            "apollo       | 1e-4 | finetuning_type: full;use_apollo: true;apollo_rank: 4;apollo_update_interval: 2",
            "badam        | 1e-4 | finetuning_type: full;use_badam: true;badam_switch_interval: 2",
            "badam ratio  | 1e-4 | finetuning_type: full;use_badam: true;badam_mode: ratio;badam_update_ratio: 0.3",
            "muon         | 3e-2 | finetuning_type: full;use_muon: true",
            "adam-mini    | 1e-4 | finetuning_type: full;use_adam_mini: true",
            "neat packing | 1e-4 | finetuning_type: full;neat_packing: true",
            "bf16         | 3e-2 | finetuning_type: full;bf16: true",
            "pure bf16    | 3e-2 | finetuning_type: full;pure_bf16: true"})
    void twoRanksTrainLikeOneProcess(String method, double tolerance, String yaml, @TempDir Path dir) throws Exception {
        Map<String, float[]> single = train(config(dir, yaml, 2), World.single(), dir.resolve("single"));
        SftConfig split = config(dir, yaml, 1);
        List<Map<String, float[]>> ranks = new ArrayList<>();
        ExecutorService pool = Executors.newFixedThreadPool(2);
        Duration timeout = Duration.ofSeconds(60);
        try (Rendezvous rv = Rendezvous.host("127.0.0.1", 2, timeout)) {
            List<Future<Map<String, float[]>>> futures = new ArrayList<>();
            for (int r = 0; r < 2; r++) {
                int rank = r;
                futures.add(pool.submit(() -> {
                    try (World w = World.join(rank, 2, rv.address(), "127.0.0.1", CPU, timeout)) {
                        return train(split, w, dir.resolve("rank" + rank));
                    }
                }));
            }
            for (Future<Map<String, float[]>> f : futures) {
                ranks.add(f.get());
            }
        } finally {
            pool.shutdownNow();
        }
        Map<String, float[]> start = initial(split);
        double diff = 0;
        double update = 0;
        double ranksApart = 0;
        for (String name : single.keySet()) {
            float[] a = single.get(name);
            float[] b = ranks.get(0).get(name);
            float[] c = ranks.get(1).get(name);
            float[] x0 = start.get(name);
            for (int i = 0; i < a.length; i++) {
                diff = Math.max(diff, Math.abs(a[i] - b[i]));
                update = Math.max(update, Math.abs(a[i] - x0[i]));
                ranksApart = Math.max(ranksApart, Math.abs(b[i] - c[i]));
            }
        }
        System.out.printf("world_size 2 %-14s max |single - ranks| / max update = %.2e (update %.3g)%n", method,
                diff / update, update);
        assertTrue(update > 1e-4, method + ": training must move the weights, moved " + update);
        assertEquals(0, ranksApart, 0, method + ": the two ranks must hold identical replicas");
        assertTrue(diff / update < tolerance, method + ": world_size 2 differs from one process by " + diff / update
                + " of the update");
    }
}
