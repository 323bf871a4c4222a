package dev.sparksft.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sparksft.UserError;
import dev.sparksft.runtime.Torch;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Phi-3 config.json reading (partial rotary, longrope and its attention factor, refusals by key),
 * the fused names (qkv_proj, gate_up_proj) in loading, saving and LoRA targets, and longrope's
 * short factors against the reference below the original length. The full forward is
 * {@link ParityTest}'s (fixtures phi3 and phi4_mini).
 */
class Phi3Test {
    private static final ObjectMapper JSON = new ObjectMapper();

    @BeforeAll
    static void loadTorch() {
        Torch.load(1);
    }

    static ObjectNode phi4Mini() throws Exception {
        return (ObjectNode) JSON.readTree(Files.readString(ParityTest.fixture("phi4_mini").resolve("config.json")));
    }

    static String refusal(ObjectNode c) {
        return assertThrows(UserError.class, () -> ModelConfig.fromJson(c, "config.json")).getMessage();
    }

    @Test
    void readsPartialRotaryAndLongRope() throws Exception {
        ModelConfig cfg = ModelConfig.fromJson(phi4Mini(), "config.json");
        assertEquals(16, cfg.headDim());
        assertEquals(12, cfg.rotaryDim(), "int(16 * 0.75)");
        ModelConfig.RopeScaling s = cfg.ropeScaling();
        assertEquals("longrope", s.type());
        assertEquals(8, s.originalMaxPositions());
        assertEquals(8.0, s.factor(), "max_position_embeddings / original_max_position_embeddings");
        assertEquals(Math.sqrt(1 + Math.log(8) / Math.log(8)), s.attentionFactor(), 1e-12);
        assertEquals(List.of(1.0, 1.5, 3.0, 6.0, 12.0, 24.0), s.longFactor());
        assertTrue(cfg.tieWordEmbeddings());
        assertEquals(0, cfg.slidingWindow(), "sliding_window: null");
        assertTrue(!cfg.qkvBias() && !cfg.outputBias());
    }

    @Test
    void anExplicitAttentionFactorIsKept() throws Exception {
        ObjectNode c = phi4Mini();
        ((ObjectNode) c.get("rope_scaling")).put("attention_factor", 1.25);
        assertEquals(1.25, ModelConfig.fromJson(c, "config.json").ropeScaling().attentionFactor());
    }

    @Test
    void refusesWhatItCannotRunByKey() throws Exception {
        ObjectNode odd = phi4Mini();
        odd.put("partial_rotary_factor", 0.7);   // int(16 * 0.7) = 11
        assertTrue(refusal(odd).contains("partial_rotary_factor 0.7 gives a rotary dimension of 11"), refusal(odd));
        ObjectNode big = phi4Mini();
        big.put("partial_rotary_factor", 1.5);
        assertTrue(refusal(big).contains("partial_rotary_factor must be a number in (0, 1]"), refusal(big));
        ObjectNode shortList = phi4Mini();
        ((ObjectNode) shortList.get("rope_scaling")).putArray("long_factor").add(1.0);
        assertTrue(refusal(shortList).contains("needs 'long_factor', a list of 6 numbers"), refusal(shortList));
        ObjectNode dropout = phi4Mini();
        dropout.put("resid_pdrop", 0.1);
        assertTrue(refusal(dropout).contains("resid_pdrop=0.1 is not supported") && refusal(dropout).contains(
                "set resid_pdrop: 0.0"), refusal(dropout));
        ObjectNode act = phi4Mini();
        act.put("hidden_act", "gelu");
        assertTrue(refusal(act).contains("hidden_act 'gelu' is not supported for phi3"), refusal(act));
        ObjectNode yarn = phi4Mini();
        ((ObjectNode) yarn.get("rope_scaling")).put("type", "yarn");
        assertTrue(refusal(yarn).contains("rope_scaling type 'yarn' is not supported"), refusal(yarn));
    }

    @Test
    void fusedProjectionsHaveHuggingFaceNamesAndShapes() throws Exception {
        ModelConfig cfg = ModelConfig.fromJson(phi4Mini(), "config.json");
        Map<String, long[]> shapes = new ModelLayout(cfg).expectedShapes();
        assertArrayEquals(new long[] {(4 + 2 * 2) * 16, 64}, shapes.get("model.layers.1.self_attn.qkv_proj.weight"));
        assertArrayEquals(new long[] {2 * 64, 64}, shapes.get("model.layers.1.mlp.gate_up_proj.weight"));
        assertArrayEquals(new long[] {64, 64}, shapes.get("model.layers.1.self_attn.o_proj.weight"));
        assertNull(shapes.get("model.layers.0.self_attn.q_proj.weight"));
        assertNull(shapes.get("lm_head.weight"), "tied");
        assertEquals(List.of("qkv_proj", "o_proj", "gate_up_proj", "down_proj"), new ModelLayout(cfg).layerLinears());
        assertEquals("model.layers.2.self_attn.qkv_proj", ModelLayout.linear(2, "qkv_proj"));
        assertEquals("model.layers.2.mlp.gate_up_proj",
                ModelLayout.layerLinearModule("model.layers.2.mlp.gate_up_proj.weight"));
    }

    @Test
    void aMissingOrUnfusedTensorIsNamed(@TempDir Path dir) throws Exception {
        Path fixture = ParityTest.fixture("phi3");
        ModelConfig cfg = ModelConfig.load(fixture);
        ModelWeights w = ModelWeights.load(fixture, cfg);
        Map<String, Tensor> tensors = new java.util.LinkedHashMap<>(w.tensors());
        tensors.remove("model.layers.1.mlp.gate_up_proj.weight");
        cfg.save(dir);
        new ModelWeights(tensors, Map.of(), Map.of()).save(dir, Dtype.F32);
        String missing = assertThrows(UserError.class, () -> ModelWeights.load(dir, cfg)).getMessage();
        assertTrue(missing.contains("missing 1 tensor(s), first: model.layers.1.mlp.gate_up_proj.weight"), missing);

        tensors.put("model.layers.1.mlp.gate_proj.weight", w.get("model.layers.1.mlp.down_proj.weight").t().contiguous());
        new ModelWeights(tensors, Map.of(), Map.of()).save(dir, Dtype.F32);
        String unexpected = assertThrows(UserError.class, () -> ModelWeights.load(dir, cfg)).getMessage();
        assertTrue(unexpected.contains("unexpected tensor 'model.layers.1.mlp.gate_proj.weight' for a phi3 model"),
                unexpected);
    }

    @Test
    void savedWeightsKeepTheFusedNamesAndValues(@TempDir Path dir) throws Exception {
        Path fixture = ParityTest.fixture("phi3");
        ModelConfig cfg = ModelConfig.load(fixture);
        ModelWeights w = ModelWeights.load(fixture, cfg);
        cfg.save(dir);
        w.saveSharded(dir, Dtype.BF16, 20_000);
        assertTrue(Files.isRegularFile(dir.resolve(ModelWeights.INDEX_FILE)), "sharded");
        String index = Files.readString(dir.resolve(ModelWeights.INDEX_FILE));
        assertTrue(index.contains("model.layers.0.self_attn.qkv_proj.weight") && !index.contains("q_proj.weight"), index);
        ModelWeights back = ModelWeights.load(dir, cfg);
        String name = "model.layers.0.mlp.gate_up_proj.weight";
        assertTrue(back.get(name).equal(w.get(name)), "F16 values survive a BF16-default save in their stored dtype");
    }

    @Test
    void loraAllAdaptsTheFusedModulesByTheirPeftNames(@TempDir Path dir) throws Exception {
        Path fixture = ParityTest.fixture("phi4_mini");
        ModelConfig cfg = ModelConfig.load(fixture);
        ModelWeights w = ModelWeights.load(fixture, cfg);
        LoraAdapter lora = LoraAdapter.create(w, new LoraAdapter.Settings(4, 8, 0, false, List.of("all"), List.of()), 3);
        lora.save(dir, w, "base");
        assertEquals("[\"down_proj\",\"gate_up_proj\",\"o_proj\",\"qkv_proj\"]",
                JSON.readTree(dir.resolve("adapter_config.json").toFile()).get("target_modules").toString());
        assertArrayEquals(new long[] {(4 + 2 * 2) * 16, 4},
                lora.pair("model.layers.0.self_attn.qkv_proj.weight").b().sizes().vec().get());
        assertTrue(lora.tensors().containsKey("model.layers.1.mlp.gate_up_proj.lora_A.weight"));
        String none = assertThrows(UserError.class, () -> LoraAdapter.create(w,
                new LoraAdapter.Settings(4, 8, 0, false, List.of("q_proj"), List.of()), 3)).getMessage();
        assertTrue(none.contains("choose from down_proj, gate_up_proj, o_proj, qkv_proj or all"), none);
    }

    /** Below original_max_position_embeddings longrope uses the short factors: logits of an 8-token prefix. */
    @Test
    void shortFactorsApplyUpToTheOriginalLength() throws Exception {
        Path dir = ParityTest.fixture("phi4_mini");
        JsonNode expected = JSON.readTree(dir.resolve("expected.json").toFile());
        int length = expected.get("short_prefix").get("length").asInt();
        try (PointerScope scope = new PointerScope()) {
            ModelConfig cfg = ModelConfig.load(dir);
            CausalLm model = new CausalLm(cfg, ModelWeights.load(dir, cfg));
            Tensor ids = Tensors.longs(expected.get("input_ids")).narrow(1, 0, length);
            Tensor mask = Tensors.longs(expected.get("attention_mask")).narrow(1, 0, length);
            float[] got = Tensors.floats(model.forward(ids, mask, Tensors.positions(ids.size(0), length)).contiguous());
            JsonNode want = expected.get("short_prefix").get("logits");
            assertEquals(want.size(), got.length);
            double maxAbs = 0;
            double worst = 0;
            for (JsonNode v : want) {
                maxAbs = Math.max(maxAbs, Math.abs(v.asDouble()));
            }
            for (int i = 0; i < got.length; i++) {
                worst = Math.max(worst, Math.abs(got[i] - want.get(i).asDouble()));
            }
            System.out.printf("parity phi4_mini short factors: max |logit error| / max |logit| = %.2e%n", worst / maxAbs);
            assertTrue(worst / maxAbs < ParityTest.RELATIVE_TOLERANCE, "relative " + worst / maxAbs);
        }
    }
}
