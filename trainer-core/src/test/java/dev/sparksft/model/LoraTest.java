package dev.sparksft.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sparksft.model.TinyModel;
import dev.sparksft.config.FinetuningArguments;
import dev.sparksft.config.SftConfig;
import dev.sparksft.runtime.Torch;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** LoRA on the tiny Qwen2 (q/k/v biases): the math, merging, and PEFT's file layout. */
class LoraTest {
    @TempDir
    static Path dir;
    static Path modelDir;

    @BeforeAll
    static void tinyModel() throws Exception {
        Torch.load(1);
        modelDir = dir.resolve("model");
        TinyModel.write(new TinyModel.Options("qwen2", modelDir, 5, 32, 2, 4, 2, 64, null, 0, 0));
    }

    static FinetuningArguments lora(String extra) throws Exception {
        Path f = Files.createTempFile(dir, "lora", ".yaml");
        Files.writeString(f, "model_name_or_path: m\ntemplate: chatml\ndataset: d\nfinetuning_type: lora\n" + extra);
        return SftConfig.load(f, List.of()).finetuning();
    }

    /** The adapter settings of a config's lora_* keys, as the trainer builds them. */
    static LoraAdapter.Settings settings(FinetuningArguments ft) {
        return new LoraAdapter.Settings(ft.loraRank(), ft.loraAlpha(), ft.loraDropout(), ft.useRslora(), ft.loraTarget(),
                ft.additionalTarget());
    }

    /** An adapter with random, non-zero B (fresh adapters have B = 0 and change nothing). */
    static CausalLm adapted(CausalLm base, FinetuningArguments ft) {
        LoraAdapter adapter = LoraAdapter.create(base.weights(), settings(ft), 3);
        adapter.tensors().forEach((n, t) -> {
            if (n.contains("lora_B")) {
                t.copy_(torch.randn(t.sizes().vec().get()).mul_(new Scalar(0.05)));
            }
        });
        return base.withAdapter(adapter);
    }

    static Tensor logits(CausalLm m) {
        Tensor ids = Tensor.create(new long[] {1, 5, 9, 2, 7, 3, 4, 8, 6, 10}, 2, 5);
        Tensor mask = torch.ones(2, 5).to(torch.ScalarType.Long);
        return m.forward(ids, mask, Tensors.positions(2, 5));
    }

    @Test
    void aFreshAdapterChangesNothingAndMergingGivesTheSameOutputs() throws Exception {
        CausalLm base = CausalLm.load(modelDir, 0);
        Tensor before = logits(base);
        FinetuningArguments ft = lora("lora_rank: 4\nlora_alpha: 8\n");
        assertEquals(0, logits(base.withAdapter(LoraAdapter.create(base.weights(), settings(ft), 3))).sub(before).abs().max()
                .item_double(), 0.0, "B starts at zero");
        CausalLm withAdapter = adapted(base, ft);
        Tensor adapted = logits(withAdapter);
        double moved = adapted.sub(before).abs().max().item_double();
        assertTrue(moved > 1e-3, "the adapter must change the outputs, moved " + moved);
        withAdapter.lora().mergeInto(base.weights());
        Tensor merged = logits(new CausalLm(base.config(), base.weights()));
        // float32: x W'^T against x W^T + s x A^T B^T, summed in different orders
        assertEquals(0, merged.sub(adapted).abs().max().item_double(), 1e-5);
    }

    @Test
    void rsLoraScalesByAlphaOverSqrtRank() throws Exception {
        CausalLm base = CausalLm.load(modelDir, 0);
        assertEquals(16.0 / 8, LoraAdapter.create(base.weights(), settings(lora("")), 0).scaling(), 0, "alpha defaults to 2 x rank");
        assertEquals(16 / Math.sqrt(8), LoraAdapter.create(base.weights(), settings(lora("use_rslora: true\n")), 0).scaling(), 1e-12);
    }

    /** A reader of safetensors written here from the format's definition (8-byte length, JSON header). */
    static JsonNode header(Path file) throws Exception {
        try (InputStream in = Files.newInputStream(file)) {
            byte[] len = in.readNBytes(8);
            long n = ByteBuffer.wrap(len).order(ByteOrder.LITTLE_ENDIAN).getLong();
            return new ObjectMapper().readTree(new String(in.readNBytes((int) n), StandardCharsets.UTF_8));
        }
    }

    @Test
    void savedAdapterHasPeftKeyNamesShapesAndConfig() throws Exception {
        CausalLm base = CausalLm.load(modelDir, 0);
        FinetuningArguments ft = lora("lora_rank: 4\nlora_target: q_proj,v_proj\nadditional_target: embed_tokens\n");
        CausalLm m = adapted(base, ft);
        Path out = dir.resolve("adapter");
        m.lora().save(out, base.weights(), modelDir.toString());
        JsonNode h = header(out.resolve("adapter_model.safetensors"));
        Map<String, String> shapes = new TreeMap<>();
        for (Iterator<String> it = h.fieldNames(); it.hasNext(); ) {
            String k = it.next();
            if (!k.equals("__metadata__")) {
                shapes.put(k, h.get(k).get("dtype").asText() + h.get(k).get("shape"));
            }
        }
        // hidden 32, 4 heads of 8, 2 kv heads: q_proj (32, 32), v_proj (16, 32); PEFT strips ".default"
        Map<String, String> want = new TreeMap<>();
        for (int i = 0; i < 2; i++) {
            String p = "base_model.model.model.layers." + i + ".self_attn.";
            want.put(p + "q_proj.lora_A.weight", "F32[4,32]");
            want.put(p + "q_proj.lora_B.weight", "F32[32,4]");
            want.put(p + "v_proj.lora_A.weight", "F32[4,32]");
            want.put(p + "v_proj.lora_B.weight", "F32[16,4]");
        }
        want.put("base_model.model.model.embed_tokens.weight", "F32[" + base.config().vocabSize() + ",32]");
        assertEquals(want, shapes);
        JsonNode c = new ObjectMapper().readTree(out.resolve("adapter_config.json").toFile());
        assertEquals("LORA", c.get("peft_type").asText());
        assertEquals(4, c.get("r").asInt());
        assertEquals(8, c.get("lora_alpha").asInt());
        assertEquals("[\"q_proj\",\"v_proj\"]", c.get("target_modules").toString());
        assertEquals("[\"embed_tokens\"]", c.get("modules_to_save").toString());
        assertEquals("CAUSAL_LM", c.get("task_type").asText());
        assertEquals(modelDir.toString(), c.get("base_model_name_or_path").asText());

        // loading it back onto a fresh base gives the same outputs
        CausalLm fresh = CausalLm.load(modelDir, 0);
        Tensor reloaded = logits(fresh.withAdapter(LoraAdapter.load(out, fresh.weights(), 0)));
        assertEquals(0, reloaded.sub(logits(m)).abs().max().item_double(), 1e-6);
    }

    @Test
    void badAdaptersAreRefusedByName() throws Exception {
        CausalLm base = CausalLm.load(modelDir, 0);
        var e = assertThrows(IllegalArgumentException.class,
                () -> LoraAdapter.create(base.weights(), settings(lora("lora_target: attention\n")), 0));
        assertTrue(e.getMessage().contains("lora_target") && e.getMessage().contains("q_proj"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> LoraAdapter.create(base.weights(), settings(lora("additional_target: vision_tower\n")), 0));
        assertTrue(e.getMessage().contains("additional_target"), e.getMessage());
        // an adapter saved with rank 4 read with a config that says 2
        Path out = dir.resolve("bad-adapter");
        adapted(base, lora("lora_rank: 4\n")).lora().save(out, base.weights(), "m");
        Files.writeString(out.resolve("adapter_config.json"),
                Files.readString(out.resolve("adapter_config.json")).replace("\"r\" : 4", "\"r\" : 2"));
        e = assertThrows(IllegalArgumentException.class, () -> LoraAdapter.load(out, base.weights(), 0));
        assertTrue(e.getMessage().contains("lora_A.weight") && e.getMessage().contains("r = 2"), e.getMessage());
        assertFalse(Adapter.isAdapterDir(modelDir));
    }
}
