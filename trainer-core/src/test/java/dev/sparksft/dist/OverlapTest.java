package dev.sparksft.dist;

import static dev.sparksft.train.ModelComparison.floats;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.sparksft.config.SftConfig;
import dev.sparksft.data.SyntheticTasks;
import dev.sparksft.data.TokenizedExample;
import dev.sparksft.model.CausalLm;
import dev.sparksft.model.ModelLayout;
import dev.sparksft.model.TinyModel;
import dev.sparksft.run.RunData;
import dev.sparksft.runtime.Torch;
import dev.sparksft.tokenizer.Tokenizer;
import dev.sparksft.train.Models;
import dev.sparksft.train.Outputs;
import dev.sparksft.train.Trainer;
import dev.sparksft.train.TrainingSetup;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Gradient reduction overlapped with the backward (overlap_gradient_reduction) against the
 * reduction after it, on 2 Gloo ranks as threads, 3 steps of 2 micro-batches: the same per-step
 * losses and bit-identical weights on every rank, at ZeRO stages 0 to 3, with and without
 * activation checkpointing, full and LoRA, an untied (llama) and a tied (gemma2) embedding. The
 * overlapped runs use buckets of {@link #BUCKET} elements, so the 4-layer model's gradients leave in
 * several buckets during the backward (the test checks that some did). With 2 ranks an element's
 * sum is one addition whatever the bucket boundaries, hence bit-identical.
 */
class OverlapTest {
    static final long BUCKET = 6000;   // a tiny layer holds ~10k elements: a layer spans two buckets
    @TempDir
    static Path shared;
    static Path llama;
    static Path gemma2;
    static Path data;

    record Run(List<Map<String, float[]>> weights, List<Double> losses, List<Integer> launchedInBackward) {}

    @BeforeAll
    static void tinyModelsAndData() throws Exception {
        Torch.load(1);
        llama = shared.resolve("llama");
        TinyModel.write(new TinyModel.Options("llama", llama, 0, 32, 4, 4, 2, 64, null, 0, 0));
        gemma2 = shared.resolve("gemma2");
        TinyModel.write(new TinyModel.Options("gemma2", gemma2, 0, 32, 4, 4, 2, 64, null, 0, 0));
        data = shared.resolve("data");
        SyntheticTasks.write(SyntheticTasks.Task.SORT, data.resolve("train.jsonl"), 40, 6, 1);
    }

    static SftConfig config(Path dir, Path model, String tag, String extra) throws Exception {
        Path f = dir.resolve(tag + ".yaml");
        Files.writeString(f, dev.sparksft.TestYaml.withExtra("model_name_or_path: " + model
                + "\ntemplate: qwen3_nothink\ndataset: train.jsonl\ndataset_dir: " + data + "\ncutoff_len: 32\n"
                + "do_train: true\noutput_dir: " + dir.resolve("out-" + tag) + "\noverwrite_output_dir: true\n"
                + "per_device_train_batch_size: 2\ngradient_accumulation_steps: 2\nmax_steps: 3\n"
                + "learning_rate: 1.0e-2\nlogging_steps: 1\nnum_threads: 1\ndisable_shuffling: true\n"
                + "save_strategy: \"no\"\n" + extra.replace(";", "\n") + "\n", ""));
        return SftConfig.load(f, List.of());
    }

    /** Trains on {@code world} with overlap on (buckets of {@link #BUCKET}) or off; the trained tensors, losses, early buckets. */
    static Object[] train(SftConfig config, World world, Path outDir, boolean overlap) {
        Path base = Path.of(config.model().modelNameOrPath());
        try (Tokenizer raw = Tokenizer.load(base)) {
            RunData d = RunData.load(config, raw);
            List<TokenizedExample> train = d.trainExamples();
            CausalLm m = Models.forTraining(config, base, null, null, d.tokenizer().vocabSize(), ZeroTest.CPU);
            Outputs outputs = world.isMain() ? Outputs.prepare(outDir, base, true, false) : Outputs.open(outDir, base);
            TrainingSetup s = TrainingSetup.of(config.training(), config.finetuning(), m, train.size(), world,
                    config.model().activationCheckpointing());
            // the same partition (it depends on names and sizes only), small buckets so that several leave early
            Sharding sharding = new Sharding(world, s.sharding().stage(), s.trainable(), overlap, BUCKET);
            TrainingSetup setup = new TrainingSetup(s.trainable(), sharding, s.optimizer(), s.loss(), s.plan(),
                    s.totalSteps(), s.schedule(), s.activationCheckpointing(), s.computeAccuracy(), s.plotLoss(), null);
            Trainer trainer = new Trainer(config.training(), m, setup, train, List.of(), world, d.tokenizer().padId(),
                    outputs);
            trainer.train(null);
            sharding.gatherAll();
            Map<String, float[]> out = new LinkedHashMap<>();
            (m.adapter() != null ? m.adapter().tensors() : m.weights().tensors())
                    .forEach((n, t) -> out.put(n, floats(t.to(torch.ScalarType.Float).contiguous())));
            List<Double> losses = new ArrayList<>();
            for (JsonNode h : trainer.log().history()) {
                if (h.has("loss")) {
                    losses.add(h.get("loss").asDouble());
                }
            }
            return new Object[] {out, losses, sharding.launchedInBackward()};
        } catch (Exception e) {
            throw new RuntimeException(e);
        }
    }

    @SuppressWarnings("unchecked")
    static Run onTwoRanks(SftConfig config, Path dir, boolean overlap) throws Exception {
        List<Object[]> ranks = WorldTest.onRanks(2, ZeroTest.TIMEOUT,
                w -> train(config, w, dir.resolve((overlap ? "on" : "off") + "-rank" + w.rank()), overlap));
        List<Map<String, float[]>> weights = new ArrayList<>();
        List<Integer> early = new ArrayList<>();
        ranks.forEach(r -> {
            weights.add((Map<String, float[]>) r[0]);
            early.add((Integer) r[2]);
        });
        return new Run(weights, (List<Double>) ranks.get(0)[1], early);
    }

    static void assertBitIdentical(String what, Run off, Run on) {
        assertEquals(off.losses(), on.losses(), what + ": per-step losses");
        for (int r = 0; r < 2; r++) {
            for (String name : off.weights().get(0).keySet()) {
                assertArrayEquals(off.weights().get(0).get(name), on.weights().get(r).get(name),
                        what + ": " + name + " on rank " + r + " (overlapped) against rank 0 (not overlapped)");
                assertArrayEquals(off.weights().get(0).get(name), off.weights().get(r).get(name),
                        what + ": " + name + " on rank " + r + " (not overlapped)");
            }
        }
        System.out.printf("%-40s bit-identical over %d tensors, %d steps; buckets started in the last backward: %s%n",
                what, off.weights().get(0).size(), off.losses().size(), on.launchedInBackward());
    }

    @ParameterizedTest(name = "{0} ZeRO {1}, checkpointing {2}, {3}")
    @CsvSource(delimiter = '|', value = {
            "llama  | 0 | true  | finetuning_type: full",
            "llama  | 0 | false | finetuning_type: full",
            "llama  | 1 | true  | finetuning_type: full",
            "llama  | 1 | false | finetuning_type: lora;lora_rank: 4",
            "llama  | 2 | true  | finetuning_type: lora;lora_rank: 4",
            "llama  | 2 | false | finetuning_type: full",
            "llama  | 3 | true  | finetuning_type: full",
            "llama  | 3 | true  | finetuning_type: lora;lora_rank: 4;lora_dropout: 0.1",
            "gemma2 | 2 | true  | finetuning_type: full",
            "gemma2 | 0 | false | finetuning_type: full"})
    void overlappedReductionGivesTheSameWeightsBitForBit(String arch, int stage, boolean checkpointing, String method,
            @TempDir Path dir) throws Exception {
        String extra = method + (checkpointing ? "" : ";disable_gradient_checkpointing: true")
                + (stage == 0 ? "" : ";deepspeed: " + ZeroTest.deepspeed(dir, "ds_z2_config.json", stage));
        SftConfig config = config(dir, arch.equals("llama") ? llama : gemma2, "run", extra);
        Run off = onTwoRanks(config, dir, false);
        Run on = onTwoRanks(config, dir, true);
        String what = arch + " ZeRO-" + stage + (checkpointing ? " ckpt " : " plain ") + method.split(";")[0];
        assertBitIdentical(what, off, on);
        assertEquals(List.of(0, 0), off.launchedInBackward(), what + ": nothing overlaps with overlap off");
        if (stage < 3) {   // stage 3 reduces every layer of every micro-batch as before, started instead of awaited
            for (int early : on.launchedInBackward()) {
                assertTrue(early > 1, what + ": the last backward must start several buckets itself, started " + early);
            }
        }
    }

    /**
     * 5 examples on 2 ranks x 2 per device x 2 micro-batches: some rank has no data for a
     * micro-step (the last one included), yet makes every bucket's collectives in the plan's order
     * (after its backward, as zeros); the weights equal the run without overlap.
     */
    @ParameterizedTest(name = "ZeRO {0}")
    @CsvSource({"0", "2"})
    void aRankWithoutDataForTheLastMicroStepStartsTheSameBuckets(int stage, @TempDir Path dir) throws Exception {
        String extra = "finetuning_type: full;max_samples: 5"
                + (stage == 0 ? "" : ";deepspeed: " + ZeroTest.deepspeed(dir, "ds_z2_config.json", stage));
        SftConfig config = config(dir, llama, "five", extra);
        assertBitIdentical("llama ZeRO-" + stage + " partial steps", onTwoRanks(config, dir, false),
                onTwoRanks(config, dir, true));
    }

    /**
     * The bucket plan on 2 ranks: the same boundaries in the same order on both, head first, then
     * the decoder layers last to first, the embedding in the last bucket; every trainable tensor
     * in exactly one bucket, each bucket within the cap unless it is one tensor alone.
     */
    @Test
    void theBucketPlanIsTheSameOnEveryRankInTheOrderTheBackwardCompletesIt(@TempDir Path dir) throws Exception {
        SftConfig config = config(dir, llama, "plan", "finetuning_type: full");
        List<List<List<String>>> plans = WorldTest.onRanks(2, ZeroTest.TIMEOUT, w -> {
            try (Tokenizer raw = Tokenizer.load(llama)) {
                CausalLm m = Models.forTraining(config, llama, null, null, raw.vocabSize(), ZeroTest.CPU);
                TrainingSetup s = TrainingSetup.of(config.training(), config.finetuning(), m, 40, w);
                Sharding sharding = new Sharding(w, 2, s.trainable(), true, BUCKET);
                List<List<String>> plan = sharding.buckets();
                Map<String, Tensor> trainable = s.trainable();
                List<String> flat = plan.stream().flatMap(List::stream).toList();
                assertEquals(trainable.size(), flat.size(), "every trainable tensor once");
                assertEquals(new java.util.HashSet<>(trainable.keySet()), new java.util.HashSet<>(flat));
                for (List<String> bucket : plan) {
                    long elements = bucket.stream().mapToLong(n -> trainable.get(n).numel()).sum();
                    assertTrue(bucket.size() == 1 || elements <= BUCKET, bucket + " holds " + elements);
                }
                return plan;
            } catch (Exception e) {
                throw new RuntimeException(e);
            }
        });
        assertEquals(plans.get(0), plans.get(1), "the same buckets in the same order on both ranks");
        List<List<String>> plan = plans.get(0);
        assertTrue(plan.size() > 4, "several buckets at this cap, got " + plan.size());
        assertEquals(List.of(ModelLayout.FINAL_NORM, ModelLayout.LM_HEAD),
                plan.stream().flatMap(List::stream).toList().subList(0, 2), "the head first");
        assertTrue(plan.get(plan.size() - 1).contains(ModelLayout.EMBEDDING), "the embedding last");
        int previous = Integer.MAX_VALUE;
        for (String n : plan.stream().flatMap(List::stream).toList()) {
            int layer = ModelLayout.layerIndex(n);
            if (layer >= 0) {
                assertTrue(layer <= previous, n + " after layer " + previous + ": layers must come last to first");
                previous = layer;
            }
        }
        System.out.println("bucket plan (" + plan.size() + " buckets): " + plan.stream().map(b -> b.size() + " tensors")
                .toList());
    }
}
