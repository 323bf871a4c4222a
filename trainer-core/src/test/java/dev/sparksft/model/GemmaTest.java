package dev.sparksft.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sparksft.UserError;
import dev.sparksft.runtime.Torch;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Gemma 2 / Gemma 3 config.json reading (the layer pattern rules, transformers' class defaults
 * for keys a saved file leaves out, every refusal by key) and the gemma3 checkpoint names
 * (model.language_model.*) kept on saving the model and a LoRA adapter. The forward pass itself
 * is {@link ParityTest}'s.
 */
class GemmaTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @BeforeAll
    static void loadTorch() {
        Torch.load(1);
    }

    static ObjectNode gemma2() throws Exception {
        return (ObjectNode) JSON.readTree("""
                {"model_type": "gemma2", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 4,
                 "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "vocab_size": 96}""");
    }

    static ModelConfig read(ObjectNode c) {
        return ModelConfig.fromJson(c, "config.json");
    }

    static String refusal(ObjectNode c) {
        return assertThrows(UserError.class, () -> read(c)).getMessage();
    }

    @Test
    void gemma2WindowsTheEvenLayersAndGetsTheClassDefaults() throws Exception {
        ModelConfig cfg = read(gemma2());
        assertEquals(List.of(true, false, true, false), cfg.forward().slidingLayers());
        assertTrue(cfg.slidingLayer(0));
        assertFalse(cfg.slidingLayer(1));
        assertEquals(4096, cfg.slidingWindow());
        assertEquals(50.0, cfg.forward().attentionSoftcap());
        assertEquals(30.0, cfg.forward().finalSoftcap());
        assertEquals(256.0, cfg.forward().queryPreAttnScalar());
        assertTrue(cfg.tieWordEmbeddings(), "save_pretrained leaves out tie_word_embeddings: true");
        assertEquals(0.0, cfg.forward().localRopeTheta());
        ObjectNode noCaps = gemma2();
        noCaps.putNull("attn_logit_softcapping");
        noCaps.putNull("final_logit_softcapping");
        assertEquals(0.0, read(noCaps).forward().attentionSoftcap());
        assertEquals(0.0, read(noCaps).forward().finalSoftcap());
    }

    @Test
    void gemma3FollowsSlidingWindowPatternOrLayerTypes() throws Exception {
        ObjectNode c = gemma2();
        c.put("model_type", "gemma3_text");
        c.put("num_hidden_layers", 7);
        assertEquals(List.of(true, true, true, true, true, false, true), read(c).forward().slidingLayers());
        c.put("sliding_window_pattern", 2);
        assertEquals(List.of(true, false, true, false, true, false, true), read(c).forward().slidingLayers());
        c.put("num_hidden_layers", 2);
        c.putArray("layer_types").add("full_attention").add("sliding_attention");
        ModelConfig cfg = read(c);
        assertEquals(List.of(false, true), cfg.forward().slidingLayers());
        assertEquals(10000.0, cfg.forward().localRopeTheta());
        assertEquals(1000000.0, cfg.ropeTheta());
        assertEquals(0.0, cfg.forward().attentionSoftcap(), "Gemma 3 has no soft-caps by default");
        assertTrue(cfg.qkNorm());
    }

    @Test
    void aSparseGemma3TextConfigGetsGemma3TextConfigsDefaults() throws Exception {
        ObjectNode c = (ObjectNode) JSON.readTree("""
                {"model_type": "gemma3", "torch_dtype": "bfloat16",
                 "text_config": {"model_type": "gemma3_text", "hidden_size": 2560, "intermediate_size": 10240,
                   "num_hidden_layers": 34, "sliding_window": 1024,
                   "rope_scaling": {"rope_type": "linear", "factor": 8.0}}}""");
        ModelConfig cfg = read(c);
        assertEquals(256, cfg.headDim());
        assertEquals(8, cfg.numHeads());
        assertEquals(4, cfg.numKvHeads());
        assertEquals(262208, cfg.vocabSize());
        assertEquals(Dtype.BF16, cfg.torchDtype());
        assertEquals(new ModelConfig.RopeScaling("linear", 8.0, 0, 0, 0), cfg.ropeScaling());
        assertEquals(34, cfg.forward().slidingLayers().size());
        assertFalse(cfg.slidingLayer(5));
        assertFalse(cfg.raw().get("text_config").has("head_dim"), "the file is written back as it was read");
    }

    @Test
    void unsupportedGemmaSettingsAreRefusedByKey() throws Exception {
        ObjectNode c = gemma2();
        c.put("hidden_activation", "gelu");
        assertTrue(refusal(c).contains("hidden_activation 'gelu' is not supported for gemma2"), refusal(c));
        c = gemma2();
        c.putArray("layer_types").add("sliding_attention").add("chunked_attention").add("full_attention")
                .add("full_attention");
        assertTrue(refusal(c).contains("layer_types entry 'chunked_attention' is not supported"), refusal(c));
        c = gemma2();
        c.putArray("layer_types").add("sliding_attention");
        assertTrue(refusal(c).contains("layer_types must list one entry per layer (num_hidden_layers = 4)"), refusal(c));
        c = gemma2();
        c.put("attn_logit_softcapping", -1);
        assertTrue(refusal(c).contains("attn_logit_softcapping must be a positive number or null, got -1"), refusal(c));
        c = gemma2();
        c.putObject("rope_scaling").put("rope_type", "yarn").put("factor", 4.0);
        assertTrue(refusal(c).contains("rope_scaling type 'yarn' is not supported (supported: llama3, linear, default)"),
                refusal(c));
        c = gemma2();
        c.put("model_type", "gemma3_text");
        c.put("use_bidirectional_attention", true);
        assertTrue(refusal(c).contains("use_bidirectional_attention=true"), refusal(c));
        c = gemma2();
        c.putObject("rope_scaling").put("rope_type", "linear");
        assertTrue(refusal(c).contains("rope_scaling of type linear needs a positive 'factor', got null"), refusal(c));
        c = gemma2();
        c.putObject("rope_parameters").put("rope_type", "default").put("rope_theta", 10000.0);
        assertTrue(refusal(c).contains("rope_parameters (transformers 5's RoPE layout) is not supported"), refusal(c));
        ObjectNode noText = (ObjectNode) JSON.readTree("{\"model_type\": \"gemma3\", \"hidden_size\": 32}");
        assertTrue(refusal(noText).contains("a gemma3 config.json needs a 'text_config' object"), refusal(noText));
    }

    @Test
    void gemma3CheckpointNamesAreKeptOnSaving(@TempDir Path out) throws Exception {
        Path dir = ParityTest.fixture("gemma3");
        ModelConfig cfg = ModelConfig.load(dir);
        ModelWeights weights = ModelWeights.load(dir, cfg);
        assertTrue(weights.tensors().containsKey("model.layers.0.self_attn.q_norm.weight"));
        weights.saveSharded(out.resolve("single"), cfg.torchDtype(), Long.MAX_VALUE);
        cfg.save(out.resolve("single"));
        Safetensors.Header header = Safetensors.readHeader(out.resolve("single").resolve(ModelWeights.SINGLE_FILE));
        assertTrue(header.entries().containsKey("model.language_model.layers.2.post_feedforward_layernorm.weight"));
        assertTrue(header.entries().keySet().stream().allMatch(n -> n.startsWith("model.language_model.")),
                header.entries().keySet().toString());
        weights.save(out.resolve("sharded"), cfg.torchDtype());      // the fixture's two shards
        cfg.save(out.resolve("sharded"));
        String index = Files.readString(out.resolve("sharded").resolve(ModelWeights.INDEX_FILE));
        assertTrue(index.contains("\"model.language_model.embed_tokens.weight\""), index);
        for (Path saved : List.of(out.resolve("single"), out.resolve("sharded"))) {
            ModelWeights again = ModelWeights.load(saved, cfg);
            for (Map.Entry<String, Tensor> e : weights.tensors().entrySet()) {
                assertTrue(again.get(e.getKey()).equal(e.getValue()), e.getKey());
            }
        }
    }

    @Test
    void aVisionTowerOrAMissingNormIsNamed(@TempDir Path out) throws Exception {
        Path dir = ParityTest.fixture("gemma3");
        ModelConfig cfg = ModelConfig.load(dir);
        ModelWeights weights = ModelWeights.load(dir, cfg);
        Map<String, Tensor> withVision = new java.util.LinkedHashMap<>();
        withVision.put("model.vision_tower.vision_model.post_layernorm.weight", Tensor.create(new float[] {1f, 2f}));
        Safetensors.write(out.resolve(ModelWeights.SINGLE_FILE), withVision);
        String m = assertThrows(UserError.class, () -> ModelWeights.load(out, cfg)).getMessage();
        assertTrue(m.contains("unexpected tensor 'model.vision_tower.vision_model.post_layernorm.weight': only the "
                + "text model (under model.language_model.) of a gemma3 checkpoint is supported"), m);

        Map<String, Tensor> lacking = new java.util.LinkedHashMap<>();
        weights.tensors().forEach((n, t) -> {
            if (!n.equals("model.layers.1.pre_feedforward_layernorm.weight")) {
                lacking.put(weights.storedName(n), t);
            }
        });
        Safetensors.write(out.resolve(ModelWeights.SINGLE_FILE), lacking);
        m = assertThrows(UserError.class, () -> ModelWeights.load(out, cfg)).getMessage();
        assertTrue(m.contains("missing 1 tensor(s), first: model.language_model.layers.1.pre_feedforward_layernorm.weight"), m);
    }

    @Test
    void gemma3PeftAdaptersHavePeftsNamesForTheTextModel(@TempDir Path out) throws Exception {
        Path dir = ParityTest.fixture("gemma3");
        ModelConfig cfg = ModelConfig.load(dir);
        ModelWeights weights = ModelWeights.load(dir, cfg);
        LoraAdapter adapter = LoraAdapter.create(weights,
                new LoraAdapter.Settings(4, 8, 0, false, List.of("all"), List.of()), 3);
        assertEquals(cfg.numLayers() * new ModelLayout(cfg).layerLinears().size(), adapter.tensors().size() / 2,
                "all: every linear of every layer");
        adapter.save(out, weights, dir.toString());
        Safetensors.Header header = Safetensors.readHeader(out.resolve(LoraAdapter.WEIGHTS_FILE));
        assertTrue(header.entries().containsKey(
                "base_model.model.model.language_model.layers.2.mlp.down_proj.lora_A.weight"), header.entries().keySet().toString());
        LoraAdapter again = LoraAdapter.load(out, weights, 0);
        assertEquals(new java.util.TreeSet<>(adapter.tensors().keySet()), new java.util.TreeSet<>(again.tensors().keySet()));

        Path oftDir = out.resolve("oft");
        OftAdapter oft = OftAdapter.create(weights, new OftAdapter.Settings(0, 8, 0, List.of("all"), List.of()));
        oft.save(oftDir, weights, dir.toString());
        header = Safetensors.readHeader(oftDir.resolve(OftAdapter.WEIGHTS_FILE));
        assertTrue(header.entries().containsKey("base_model.model.model.language_model.layers.0.self_attn.q_proj.oft_R.weight"),
                header.entries().keySet().toString());
        assertEquals(new java.util.TreeSet<>(oft.tensors().keySet()),
                new java.util.TreeSet<>(OftAdapter.load(oftDir, weights).tensors().keySet()));
    }
}
