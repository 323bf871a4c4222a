package dev.sparksft.cli;

import static dev.sparksft.train.ModelComparison.floats;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sparksft.config.SftConfig;
import dev.sparksft.data.SyntheticTasks;
import dev.sparksft.model.CausalLm;
import dev.sparksft.model.LoraAdapter;
import dev.sparksft.model.ModelConfig;
import dev.sparksft.model.ModelWeights;
import dev.sparksft.model.Safetensors;
import dev.sparksft.model.TinyModel;
import dev.sparksft.run.DiskEstimate;
import dev.sparksft.runtime.Torch;
import dev.sparksft.train.Models;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A PiSSA run end to end (pissa_init, pissa_iter 2, pissa_convert): LLaMA-Factory's files in
 * output_dir, the base model never written, the PiSSA adapter and the converted one computing the
 * same model over the original base (predict and export), and a resume giving the uninterrupted
 * run's adapters. Tolerances: 1e-5 on logits of the tiny model, 1e-6 on resumed weights.
 */
class PissaTrainingTest {
    static final ObjectMapper JSON = new ObjectMapper();
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
        SyntheticTasks.write(SyntheticTasks.Task.SORT, data.resolve("train.jsonl"), 48, 5, 1);
    }

    static SftConfig config(Path dir, String... overrides) throws Exception {
        Path f = dir.resolve("run.yaml");
        Files.writeString(f, "model_name_or_path: " + model + "\ntemplate: qwen3_nothink\ndataset: train.jsonl\n"
                + "dataset_dir: " + data + "\ncutoff_len: 32\ndo_train: true\noutput_dir: " + dir.resolve("out")
                + "\nper_device_train_batch_size: 8\nmax_steps: 4\nlearning_rate: 1.0e-2\nlogging_steps: 1\n"
                + "save_strategy: steps\nsave_steps: 2\nnum_threads: 1\nfinetuning_type: lora\nlora_rank: 4\n"
                + "pissa_init: true\npissa_iter: 2\npissa_convert: true\n");
        return SftConfig.load(f, List.of(overrides));
    }

    static Tensor logits(CausalLm m) {
        Tensor ids = Tensor.create(new long[] {1, 5, 9, 2, 7, 3, 4, 8}, 1, 8);
        Tensor mask = torch.ones(1, 8).to(torch.ScalarType.Long);
        Tensor pos = Tensor.create(new long[] {0, 1, 2, 3, 4, 5, 6, 7}, 1, 8);
        return m.forward(ids, mask, pos);
    }

    static Map<String, Tensor> adapter(Path dir) throws Exception {
        Safetensors.Header h = Safetensors.readHeader(dir.resolve(LoraAdapter.WEIGHTS_FILE));
        Map<String, Tensor> out = new LinkedHashMap<>();
        for (Safetensors.Entry e : h.entries().values()) {
            out.put(e.name(), Safetensors.readTensor(h, e));
        }
        return out;
    }

    static double maxDiff(Map<String, Tensor> x, Map<String, Tensor> y) {
        assertEquals(x.keySet(), y.keySet());
        double diff = 0;
        for (String k : x.keySet()) {
            diff = Math.max(diff, x.get(k).sub(y.get(k)).abs().max().item_double());
        }
        return diff;
    }

    @Test
    void aPissaRunWritesLlamaFactorysFilesAndItsConvertedAdapterGivesTheTrainedModel(@TempDir Path a,
                                                                                     @TempDir Path b) throws Exception {
        byte[] baseBefore = Files.readAllBytes(model.resolve(ModelWeights.SINGLE_FILE));
        TrainCommand.run(config(a));
        Path out = a.resolve("out");
        assertTrue(Files.readAllBytes(model.resolve(ModelWeights.SINGLE_FILE)).length == baseBefore.length
                && java.util.Arrays.equals(baseBefore, Files.readAllBytes(model.resolve(ModelWeights.SINGLE_FILE))),
                "the base model is never written");

        JsonNode trained = JSON.readTree(out.resolve(LoraAdapter.CONFIG_FILE).toFile());
        assertEquals("pissa_niter_2", trained.get("init_lora_weights").asText(), "output_dir holds the PiSSA adapter");
        assertEquals(4, trained.get("r").asInt());
        assertEquals("pissa_niter_2", JSON.readTree(out.resolve("checkpoint-2").resolve(LoraAdapter.CONFIG_FILE).toFile())
                .get("init_lora_weights").asText());
        for (String folder : List.of("pissa_init", "pissa_backup")) {
            JsonNode c = JSON.readTree(out.resolve(folder).resolve(LoraAdapter.CONFIG_FILE).toFile());
            assertTrue(c.get("init_lora_weights").asBoolean(), folder + ": init_lora_weights true");
            assertEquals(4, c.get("r").asInt(), folder);
            assertEquals(8, c.get("lora_alpha").asInt(), folder);
        }
        JsonNode converted = JSON.readTree(out.resolve("pissa_converted").resolve(LoraAdapter.CONFIG_FILE).toFile());
        assertTrue(converted.get("init_lora_weights").asBoolean());
        assertEquals(8, converted.get("r").asInt(), "the converted adapter has rank 2r");
        assertEquals(16, converted.get("lora_alpha").asInt(), "and lora_alpha 2 alpha, the same scaling");
        assertEquals(0, maxDiff(adapter(out), adapter(out.resolve("pissa_backup"))), "the backup is the trained adapter");
        Map<String, Tensor> init = adapter(out.resolve("pissa_init"));
        Map<String, Tensor> conv = adapter(out.resolve("pissa_converted"));
        String aKey = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight";
        assertEquals(List.of(8L, 32L), List.of(conv.get(aKey).size(0), conv.get(aKey).size(1)));
        assertArrayEquals(floats(init.get(aKey)), floats(conv.get(aKey).narrow(0, 4, 4).contiguous()), "A' = [A; A0]");

        // the disk estimate made before the run counts the three folders' tensors (headers and configs are left out)
        long folders = 0;
        for (String folder : List.of("pissa_init", "pissa_backup", "pissa_converted")) {
            for (Tensor t : adapter(out.resolve(folder)).values()) {
                folders += 4 * t.numel();
            }
        }
        ModelConfig cfg = ModelConfig.load(model);
        DiskEstimate with = DiskEstimate.of(config(a), cfg, model, 48, 0);
        DiskEstimate without = DiskEstimate.of(config(a, "pissa_convert=false"), cfg, model, 48, 0);
        assertEquals(without.checkpoint(), with.checkpoint(), "checkpoints hold no PiSSA folders");
        assertEquals(folders, with.model() - without.model(), "estimated " + (with.model() - without.model())
                + " bytes for the PiSSA folders, written " + folders);

        // the PiSSA adapter over the original base (its residual recomputed with the run's seed) and the
        // converted adapter over the original base compute the same trained model; so does the export
        Tensor pissa = logits(Models.forInference(model, out, null, 0, CPU, 42));
        Tensor plain = logits(Models.forInference(model, out.resolve("pissa_converted"), null, 0, CPU, 42));
        double gap = pissa.sub(plain).abs().max().item_double();
        Path exportDir = b.resolve("merged");
        Files.writeString(b.resolve("export.yaml"), "model_name_or_path: " + model + "\ntemplate: qwen3_nothink\n"
                + "finetuning_type: lora\nadapter_name_or_path: " + out.resolve("pissa_converted") + "\nexport_dir: "
                + exportDir + "\n");
        CausalLm merged = CausalLm.load(ExportCommand.run(SftConfig.load(b.resolve("export.yaml"), List.of())), 0);
        double exported = logits(merged).sub(pissa).abs().max().item_double();
        System.out.printf("PiSSA run: |PiSSA adapter - converted| logits %.2e, export %.2e%n", gap, exported);
        assertTrue(gap < 1e-5, "original base + pissa_converted must equal the trained PiSSA model, off by " + gap);
        assertTrue(exported < 1e-5, "the export of pissa_converted must equal the trained model, off by " + exported);

        // resume from checkpoint-2 elsewhere: the same trained and converted adapters at step 4
        TrainCommand.run(config(b, "resume_from_checkpoint=" + out.resolve("checkpoint-2")));
        double resumed = maxDiff(adapter(out), adapter(b.resolve("out")));
        double resumedConverted = maxDiff(conv, adapter(b.resolve("out").resolve("pissa_converted")));
        assertTrue(resumed < 1e-6, "resumed PiSSA adapter differs by " + resumed);
        assertTrue(resumedConverted < 1e-6, "resumed converted adapter differs by " + resumedConverted);
        assertEquals(0, maxDiff(init, adapter(b.resolve("out").resolve("pissa_init"))),
                "a resume recomputes the initial adapter exactly");
    }
}
