package dev.sparksft.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sparksft.config.SftConfig;
import dev.sparksft.model.Dtype;
import dev.sparksft.model.ModelConfig;
import dev.sparksft.model.ModelWeights;
import dev.sparksft.model.TinyModel;
import dev.sparksft.runtime.Torch;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.stream.Stream;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * LLaMA-Factory's merge YAML of a full fine-tune (no adapter, no dataset, export_size,
 * export_device, export_legacy_format) exports through {@code sft export} unchanged; shards split
 * as save_pretrained(max_shard_size) splits them and load back to the same tensors.
 */
class ExportCommandTest {
    static final ObjectMapper JSON = new ObjectMapper();

    static float[] values(Tensor t) {
        Tensor f = t.contiguous().to(org.bytedeco.pytorch.global.torch.ScalarType.Float);
        float[] out = new float[(int) f.numel()];
        new org.bytedeco.javacpp.FloatPointer(f.data_ptr_float()).get(out);
        return out;
    }

    @Test
    void llamaFactorysFullModelMergeYamlExportsTheModelUnchanged(@TempDir Path dir) throws Exception {
        Torch.load(1);
        Path model = dir.resolve("full-sft");
        TinyModel.write(new TinyModel.Options("qwen3", model, 2, 32, 2, 4, 2, 64, null, 0, 0), Dtype.BF16);
        Path yaml = Files.writeString(dir.resolve("qwen3_full_sft.yaml"), "### model\nmodel_name_or_path: " + model
                + "\ntemplate: qwen3_nothink\ntrust_remote_code: true\n\n### export\nexport_dir: " + dir.resolve("merged")
                + "\nexport_size: 5\nexport_device: cpu  # choices: [cpu, auto]\nexport_legacy_format: false\n");
        Path out = ExportCommand.run(SftConfig.load(yaml, List.of()));
        assertTrue(Files.isRegularFile(out.resolve("model.safetensors")), "a small model is one file");
        assertTrue(Files.isRegularFile(out.resolve("tokenizer.json")));
        ModelConfig cfg = ModelConfig.load(out);
        Map<String, Tensor> before = ModelWeights.load(model, ModelConfig.load(model)).tensors();
        Map<String, Tensor> after = ModelWeights.load(out, cfg).tensors();
        assertEquals(before.keySet(), after.keySet());
        for (String name : before.keySet()) {
            assertArrayEquals(values(before.get(name)), values(after.get(name)), name);
        }
        assertEquals(Files.size(model.resolve("model.safetensors")), Files.size(out.resolve("model.safetensors")),
                "bf16 weights stay bf16");
    }

    @Test
    void exportWithQuantizationBitIsRefusedAndNamesTheFix(@TempDir Path dir) throws Exception {
        Path yaml = Files.writeString(dir.resolve("merge.yaml"), "model_name_or_path: " + dir.resolve("base")
                + "\nadapter_name_or_path: " + dir.resolve("adapter") + "\ntemplate: qwen3_nothink\nquantization_bit: 4\n"
                + "export_dir: " + dir.resolve("merged") + "\n");
        dev.sparksft.UserError e = org.junit.jupiter.api.Assertions.assertThrows(dev.sparksft.UserError.class,
                () -> ExportCommand.run(SftConfig.load(yaml, List.of())));
        assertEquals("quantization_bit: 4 with export: Cannot merge adapters to a quantized model; remove quantization_bit: "
                + "an adapter trained over 4-bit weights merges into the unquantized base model_name_or_path, read from disk "
                + "(as LLaMA-Factory's merge_lora examples do)", e.getMessage());
    }

    @Test
    void shardsNeverExceedTheLimitUnlessOneTensorDoesAndLoadBack(@TempDir Path dir) throws Exception {
        Torch.load(1);
        Path model = dir.resolve("m");
        TinyModel.write(new TinyModel.Options("llama", model, 3, 32, 2, 4, 2, 64, null, 0, 0));
        ModelConfig cfg = ModelConfig.load(model);
        ModelWeights weights = ModelWeights.load(model, cfg);
        long limit = 20_000;   // bytes: the embedding (vocab x 32 x 4 bytes) alone is larger, a shard of its own
        Path out = dir.resolve("sharded");
        weights.saveSharded(out, Dtype.F32, limit);
        JsonNode index = JSON.readTree(out.resolve(ModelWeights.INDEX_FILE).toFile());
        TreeSet<String> files = new TreeSet<>();
        index.get("weight_map").fields().forEachRemaining(e -> files.add(e.getValue().asText()));
        int n = files.size();
        assertTrue(n > 2, "several shards: " + files);
        assertEquals(String.format("model-00001-of-%05d.safetensors", n), files.first());
        long total = 0;
        for (String f : files) {
            long tensorBytes = 0;
            int count = 0;
            for (var e : index.get("weight_map").properties()) {
                if (e.getValue().asText().equals(f)) {
                    tensorBytes += weights.tensors().get(e.getKey()).numel() * 4;
                    count++;
                }
            }
            assertTrue(tensorBytes <= limit || count == 1, f + " holds " + tensorBytes + " bytes in " + count + " tensors");
            total += tensorBytes;
        }
        assertEquals(total, index.get("metadata").get("total_size").asLong());
        try (Stream<Path> s = Files.list(out)) {
            assertFalse(s.anyMatch(p -> p.getFileName().toString().equals(ModelWeights.SINGLE_FILE)));
        }
        Map<String, Tensor> back = ModelWeights.load(out, cfg).tensors();
        for (String name : weights.tensors().keySet()) {
            assertArrayEquals(values(weights.tensors().get(name)), values(back.get(name)), name);
        }
    }
}
