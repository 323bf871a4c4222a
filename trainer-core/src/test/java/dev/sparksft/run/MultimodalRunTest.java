package dev.sparksft.run;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sparksft.TestYaml;
import dev.sparksft.TrainerLogs;
import dev.sparksft.cli.TrainCommand;
import dev.sparksft.config.SftConfig;
import dev.sparksft.model.LoraAdapter;
import dev.sparksft.runtime.Torch;
import dev.sparksft.train.ModelComparison;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Multimodal SFT end to end on LLaMA-Factory's mllm_demo (its dataset_info entry unchanged) with
 * the tiny Qwen2-VL that src/test/python/make_qwen2vl_demo_fixture.py writes from transformers:
 * an evaluation-only run's loss against transformers' float64 loss of the same rows (processor,
 * vision tower and M-RoPE its own), a LoRA run whose loss falls and that resumes exactly, and the
 * freeze_* keys in full fine-tuning.
 */
class MultimodalRunTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final Path MODEL = Path.of("src/test/resources/qwen2vl_demo/model").toAbsolutePath();
    static final Path DATA = Path.of("src/test/resources/mllm").toAbsolutePath();

    @BeforeAll
    static void load() {
        Torch.load(1);
    }

    static SftConfig config(Path dir, String extra) throws Exception {
        String yaml = TestYaml.withExtra("model_name_or_path: " + MODEL + "\ntemplate: qwen2_vl\ndataset: mllm_demo\n"
                + "dataset_dir: " + DATA + "\ncutoff_len: 2048\nstage: sft\ndo_train: true\noutput_dir: "
                + dir.resolve("out") + "\nlogging_steps: 1\nsave_steps: 1000\nnum_threads: 1\nseed: 7\n", extra);
        Path f = dir.resolve("run-" + Math.abs(extra.hashCode()) + ".yaml");
        Files.writeString(f, yaml);
        return SftConfig.load(f, List.of());
    }

    @Test
    void anEvaluationOnlyRunGivesTransformersLossOnMllmDemo(@TempDir Path dir) throws Exception {
        TrainCommand.run(config(dir, "do_train: false\ndo_eval: true\neval_dataset: mllm_demo\ndataset: null\n"
                + "per_device_eval_batch_size: 4\n"));
        double expected = JSON.readTree(MODEL.resolveSibling("expected.json").toFile()).get("eval_loss").asDouble();
        double loss = JSON.readTree(dir.resolve("out/eval_results.json").toFile()).get("eval_loss").asDouble();
        assertEquals(expected, loss, 1e-3 * expected, "eval_loss " + loss + " against transformers' " + expected);
    }

    @Test
    void loraTrainsWithFallingLossAndResumesExactly(@TempDir Path full, @TempDir Path resumed) throws Exception {
        String lora = "finetuning_type: lora\nlora_target: all\nlora_rank: 8\nlearning_rate: 1.0e-1\n"
                + "per_device_train_batch_size: 2\nnum_train_epochs: 4\nlr_scheduler_type: constant\nsave_steps: 6\n";
        var result = TrainCommand.run(config(full, lora));
        assertEquals(12, result.globalStep());
        List<Double> losses = TrainerLogs.losses(full.resolve("out"));
        // each epoch's 3 steps see all 6 rows, so epoch means compare; the tiny random model's frozen
        // head (std 0.02 over 32 dimensions after a frozen norm) bounds how far LoRA can move its
        // logits, so the fall is small but steady: measured 8.023, 7.979, 7.975, 7.967
        double[] epochs = new double[4];
        for (int e = 0; e < 4; e++) {
            epochs[e] = (losses.get(3 * e) + losses.get(3 * e + 1) + losses.get(3 * e + 2)) / 3;
        }
        for (int e = 1; e < 4; e++) {
            assertTrue(epochs[e] < epochs[e - 1], "epoch " + (e + 1) + "'s mean loss did not fall: "
                    + java.util.Arrays.toString(epochs));
        }
        assertTrue(epochs[3] < epochs[0] - 0.03, "loss fell too little: " + java.util.Arrays.toString(epochs));
        Path checkpoint = full.resolve("out/checkpoint-6");
        assertTrue(Files.isRegularFile(checkpoint.resolve("preprocessor_config.json")), "the processor is saved with a checkpoint");
        assertTrue(Files.isRegularFile(full.resolve("out/preprocessor_config.json")), "and with the final adapter");
        assertArrayEquals(Files.readAllBytes(MODEL.resolve("preprocessor_config.json")),
                Files.readAllBytes(full.resolve("out/preprocessor_config.json")));

        SftConfig again = SftConfig.load(Files.writeString(resumed.resolve("r.yaml"),
                Files.readString(full.resolve("run-" + Math.abs(lora.hashCode()) + ".yaml"))
                        .replace(full.resolve("out").toString(), resumed.resolve("out").toString())
                        + "resume_from_checkpoint: " + checkpoint + "\n"), List.of());
        TrainCommand.run(again);
        assertArrayEquals(Files.readAllBytes(full.resolve("out").resolve(LoraAdapter.WEIGHTS_FILE)),
                Files.readAllBytes(resumed.resolve("out").resolve(LoraAdapter.WEIGHTS_FILE)),
                "the adapter resumed from checkpoint-6 differs from the uninterrupted run's");
        assertEquals(losses.subList(6, 12), TrainerLogs.losses(resumed.resolve("out")).subList(0, 6));
    }

    @Test
    void loraWithAnUnfrozenTowerIsRefusedNotIgnored(@TempDir Path dir) throws Exception {
        dev.sparksft.UserError e = org.junit.jupiter.api.Assertions.assertThrows(dev.sparksft.UserError.class,
                () -> TrainCommand.run(config(dir, "finetuning_type: lora\nlora_target: all\nmax_steps: 1\n"
                        + "freeze_vision_tower: false\n")));
        assertTrue(e.getMessage().contains("freeze_vision_tower: false") && e.getMessage().contains("finetuning_type: full"),
                e.getMessage());
    }

    @Test
    void predictionGeneratesFromPromptsWithImages(@TempDir Path dir) throws Exception {
        TrainCommand.run(config(dir, "do_train: false\ndo_predict: true\npredict_with_generate: true\n"
                + "eval_dataset: mllm_demo\ndataset: null\nper_device_eval_batch_size: 4\nmax_new_tokens: 6\n"));
        List<String> lines = Files.readAllLines(dir.resolve("out/generated_predictions.jsonl"));
        assertEquals(6, lines.size());
        JsonNode first = JSON.readTree(lines.get(0));
        // row 0's prompt is every message but the last reply (LLaMA-Factory's unsupervised encoding), its
        // two images written back as the placeholders they came from; the label is the last reply
        String prompt = first.get("prompt").asText();
        assertTrue(prompt.contains("user\n<image>Who are they?<|im_end|>") && prompt.contains("What are they doing?<image>")
                && prompt.endsWith("<|im_start|>assistant\n"), first.toString());
        assertTrue(!prompt.contains("<|image_pad|>") && !prompt.contains("<|vision_start|>"), first.toString());
        assertEquals("They are celebrating on the soccer field.\n", first.get("label").asText(), "the reply, <|im_end|> skipped");
    }

    /**
     * Greedy generation after images with the KV cache (M-RoPE prefill, then each step at its
     * text position plus its row's rope delta) equals recomputing the whole sequence every step
     * (get_rope_index over prompt and generated tokens), in one batch of left-padded prompts.
     */
    @Test
    void generatingAfterImagesWithTheCacheEqualsRecomputing() throws Exception {
        dev.sparksft.model.CausalLm model = dev.sparksft.model.CausalLm.load(MODEL, 3026);
        JsonNode rows = JSON.readTree(MODEL.resolveSibling("expected.json").toFile()).get("rows");
        List<int[]> prompts = new ArrayList<>();
        List<List<dev.sparksft.data.TokenizedExample.Image>> images = new ArrayList<>();
        String[] files = {"1.jpg", "2.jpg", "3.jpg"};
        for (int r = 0; r < 3; r++) {
            JsonNode row = rows.get(r);
            JsonNode labels = row.get("labels");
            int firstLabel = 0;
            while (labels.get(firstLabel).asInt() == -100) {
                firstLabel++;
            }
            int[] prompt = new int[firstLabel];   // the first user turn, up to the assistant header
            for (int i = 0; i < firstLabel; i++) {
                prompt[i] = row.get("input_ids").get(i).asInt();
            }
            prompts.add(prompt);
            JsonNode grid = row.get("image_grid_thw").get(0);
            images.add(List.of(new dev.sparksft.data.TokenizedExample.Image(DATA.resolve("mllm_demo_data")
                    .resolve(files[r]).toString(), grid.get(0).asInt(), grid.get(1).asInt(), grid.get(2).asInt())));
        }
        dev.sparksft.train.BatchImages reader = dev.sparksft.train.BatchImages.forModel(model, MODEL,
                new dev.sparksft.data.LocalMediaFiles(DATA.toString()), 768 * 768, 32 * 32);
        long[] keys = {0, 1, 2};
        java.util.function.Function<List<Integer>, dev.sparksft.image.VisionInputs> imagesOf = order -> reader.of(
                order.stream().map(i -> (long) i).toList(), order.stream().map(images::get).toList());
        dev.sparksft.generate.Sampling greedy = dev.sparksft.generate.Sampling.greedy(8);
        var cached = new dev.sparksft.generate.Generator(model, greedy, java.util.Set.of(), 3000, 3, true)
                .generate(prompts, keys, imagesOf);
        var recomputed = new dev.sparksft.generate.Generator(model, greedy, java.util.Set.of(), 3000, 3, false)
                .generate(prompts, keys, imagesOf);
        for (int r = 0; r < 3; r++) {
            assertArrayEquals(recomputed.get(r).ids(), cached.get(r).ids(), "row " + r);
            assertEquals(8, cached.get(r).ids().length);
        }
    }

    /**
     * With images, activation checkpointing (the default: the vision tower in the embed step, layers
     * recomputed) and the plain backward (layered, for overlap) train the same weights, the tower's
     * included (freeze_vision_tower: false); and 1 x 2 and 2 x 1 micro-batches per step give the same losses.
     */
    @Test
    void checkpointingAndAccumulationChangeNothingWithImages(@TempDir Path on, @TempDir Path off, @TempDir Path ga)
            throws Exception {
        String full = "finetuning_type: full\nlearning_rate: 1.0e-2\nmax_steps: 2\nfreeze_vision_tower: false\n"
                + "optim: sgd\nmax_grad_norm: 0\n";
        TrainCommand.run(config(on, full + "per_device_train_batch_size: 2\n"));
        TrainCommand.run(config(off, full + "per_device_train_batch_size: 2\ndisable_gradient_checkpointing: true\n"));
        TrainCommand.run(config(ga, full + "per_device_train_batch_size: 1\ngradient_accumulation_steps: 2\n"));
        Map<String, Tensor> initial = ModelComparison.weights(MODEL);
        Map<String, Tensor> a = ModelComparison.weights(on.resolve("out"));
        assertTrue(change(a, initial, "visual.blocks") > 1e-5, "the tower trains");
        assertTrue(ModelComparison.relativeDifference(a, ModelComparison.weights(off.resolve("out")), initial, 1e-5) < 1e-5);
        // accumulation sums the micro-batches' gradients in another order, which the bfloat16 the model is
        // saved in (its torch_dtype) can round an ulp apart: compare the steps' losses, computed in float32
        List<Double> whole = TrainerLogs.losses(on.resolve("out"));
        List<Double> split = TrainerLogs.losses(ga.resolve("out"));
        assertEquals(2, split.size());
        for (int i = 0; i < 2; i++) {
            assertEquals(whole.get(i), split.get(i), 1e-5 * whole.get(i), "step " + (i + 1));
        }
    }

    /** Largest |trained - initial| over the tensors whose names start with {@code prefix}. */
    static double change(Map<String, Tensor> trained, Map<String, Tensor> initial, String prefix) {
        double change = 0;
        for (String name : initial.keySet()) {
            if (name.startsWith(prefix)) {
                float[] a = ModelComparison.floats(trained.get(name));
                float[] b = ModelComparison.floats(initial.get(name));
                for (int i = 0; i < a.length; i++) {
                    change = Math.max(change, Math.abs(a[i] - b[i]));
                }
            }
        }
        return change;
    }

    @Test
    void theFreezeKeysKeepTheirPartOfTheModelAsItWas(@TempDir Path frozen, @TempDir Path open) throws Exception {
        String full = "finetuning_type: full\nlearning_rate: 1.0e-2\nper_device_train_batch_size: 3\nmax_steps: 2\n";
        TrainCommand.run(config(frozen, full));   // LLaMA-Factory's defaults: vision tower and projector frozen
        TrainCommand.run(config(open, full + "freeze_vision_tower: false\nfreeze_multi_modal_projector: false\n"
                + "freeze_language_model: true\n"));
        Map<String, Tensor> initial = ModelComparison.weights(MODEL);
        Map<String, Tensor> a = ModelComparison.weights(frozen.resolve("out"));
        Map<String, Tensor> b = ModelComparison.weights(open.resolve("out"));
        assertEquals(0.0, change(a, initial, "visual.blocks"));
        assertEquals(0.0, change(a, initial, "visual.merger"));
        assertTrue(change(a, initial, "model.layers") > 1e-4);
        assertTrue(change(b, initial, "visual.blocks") > 1e-4, "freeze_vision_tower: false trains the tower");
        assertTrue(change(b, initial, "visual.merger") > 1e-4, "freeze_multi_modal_projector: false trains it");
        assertEquals(0.0, change(b, initial, "model."));
        assertEquals(0.0, change(b, initial, "lm_head"));
        assertNotEquals(0.0, change(b, initial, "visual.patch_embed"));
    }
}
