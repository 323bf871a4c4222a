package dev.sparksft.model;

import dev.sparksft.image.VisionInputs;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sparksft.UserError;
import dev.sparksft.runtime.Torch;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Qwen2-VL's config.json and weight files: the hub and transformers-5 layouts load to the same tensors and save
 * back in the layout they came in; bad configs are refused by field; the parts of the model (vision tower,
 * merger, language model) and what lora_target "all" adapts.
 */
class Qwen2VlLayoutTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @BeforeAll
    static void loadTorch() {
        Torch.load(1);
    }

    static Path dir(String fixture) throws Exception {
        return Qwen2VlTest.fixture(fixture.substring(0, fixture.indexOf('/'))).resolve(fixture.substring(fixture.indexOf('/') + 1));
    }

    static ModelWeights load(Path dir) throws Exception {
        return ModelWeights.load(dir, ModelConfig.load(dir));
    }

    @Test
    void hubAndTransformers5LayoutsLoadTheSameTensors() throws Exception {
        ModelConfig hubCfg = ModelConfig.load(dir("qwen2_vl/hub"));
        ModelConfig t5Cfg = ModelConfig.load(dir("qwen2_vl/t5"));
        for (ModelConfig c : List.of(hubCfg, t5Cfg)) {   // the text keys read from either level
            assertEquals(32, c.hiddenSize());
            assertEquals(16, c.headDim());
            assertEquals(96, c.vocabSize());
            assertEquals(10000.0, c.ropeTheta());
            assertNull(c.ropeScaling());
            assertTrue(c.tieWordEmbeddings());
            assertEquals(List.of(2, 3, 3), c.visionLanguage().mropeSection());
            assertEquals(90, c.visionLanguage().imageTokenId());
            assertEquals(16, c.visionLanguage().vision().width());
        }
        Map<String, Tensor> hub = load(dir("qwen2_vl/hub")).tensors();
        Map<String, Tensor> t5 = load(dir("qwen2_vl/t5")).tensors();
        assertEquals(new TreeSet<>(hub.keySet()), new TreeSet<>(t5.keySet()));
        assertTrue(hub.containsKey("visual.blocks.0.attn.qkv.weight") && hub.containsKey(ModelLayout.EMBEDDING));
        hub.forEach((n, t) -> assertTrue(t.equal(t5.get(n)), n));
    }

    /**
     * The end-to-end tests' tiny Qwen2-VL (resources/qwen2vl_demo/model, transformers 5.17's save_pretrained: a
     * text_config whose rope_parameters say both "type": "mrope" and "rope_type": "default", hub weight names) loads.
     */
    @Test
    void theDemoModelSavedByTransformers5Loads() throws Exception {
        Path dir = Paths.get(Qwen2VlLayoutTest.class.getResource("/qwen2vl_demo/model/config.json").toURI()).getParent();
        ModelConfig cfg = ModelConfig.load(dir);
        assertEquals(8, cfg.headDim());
        assertEquals(1000000.0, cfg.ropeTheta());
        assertFalse(cfg.tieWordEmbeddings());
        assertEquals(List.of(2, 1, 1), cfg.visionLanguage().mropeSection());
        assertEquals(3012, cfg.visionLanguage().imageTokenId());
        CausalLm model = new CausalLm(cfg, ModelWeights.load(dir, cfg));
        try (NoGradGuard g = new NoGradGuard()) {
            Tensor ids = Tensor.create(new long[] {3001, 82, 612, 198}, 1, 4);
            Tensor logits = model.forward(ids, ids.new_ones(new long[] {1, 4}), model.ropeIndex(ids, null, null).positionIds(),
                    null, null);
            assertEquals(3072, logits.size(2));
            assertTrue(logits.isfinite().all().item_bool());
        }
    }

    /** Saving writes the names the directory came with (hub or transformers 5) and the same bits. */
    @ParameterizedTest
    @ValueSource(strings = {"qwen2_vl/hub", "qwen2_vl/t5", "qwen2_5_vl/hub"})
    void saveWritesBackTheLayoutItCameIn(String fixture, @TempDir Path out) throws Exception {
        Path in = dir(fixture);
        ModelWeights weights = load(in);
        weights.save(out, Dtype.F32);
        Set<String> stored = Safetensors.readHeader(in.resolve(ModelWeights.SINGLE_FILE)).entries().keySet();
        Set<String> saved = Safetensors.readHeader(out.resolve(ModelWeights.SINGLE_FILE)).entries().keySet();
        assertEquals(new TreeSet<>(stored), new TreeSet<>(saved), fixture + " stored names");
        ModelWeights again = ModelWeights.load(out, ModelConfig.load(in));
        weights.tensors().forEach((n, t) -> assertTrue(t.equal(again.get(n)), n));
        Safetensors.readHeader(out.resolve(ModelWeights.SINGLE_FILE)).entries().values()
                .forEach(e -> assertEquals(Dtype.BF16, e.dtype(), e.name() + " keeps its stored dtype"));
    }

    /** LLaMA-Factory's parts: patch_embed and blocks the vision tower, the merger the projector, the rest the LM. */
    @Test
    void partsAndLoraAllAdaptTheLanguageModelOnly() throws Exception {
        ModelWeights weights = load(dir("qwen2_5_vl/hub"));
        assertEquals(ModelLayout.Part.VISION_TOWER, ModelLayout.partOf("visual.patch_embed.proj.weight"));
        assertEquals(ModelLayout.Part.VISION_TOWER, ModelLayout.partOf("visual.blocks.2.mlp.gate_proj.weight"));
        assertEquals(ModelLayout.Part.MULTI_MODAL_PROJECTOR, ModelLayout.partOf("visual.merger.mlp.0.weight"));
        assertEquals(ModelLayout.Part.LANGUAGE_MODEL, ModelLayout.partOf("model.layers.1.mlp.gate_proj.weight"));
        assertEquals(ModelLayout.Part.LANGUAGE_MODEL, ModelLayout.partOf(ModelLayout.LM_HEAD));
        assertNull(ModelLayout.layerLinearModule("visual.blocks.0.mlp.gate_proj.weight"), "a vision block's gate_proj");
        VisionConfig v = ModelConfig.load(dir("qwen2_5_vl/hub")).visionLanguage().vision();
        assertEquals(3 * 5, VisionLayout.towerLinears(v).size());
        VisionLayout.towerLinears(v).forEach(m -> assertNotNull(weights.get(m + ".weight"), m));
        VisionLayout.mergerLinears().forEach(m -> assertNotNull(weights.get(m + ".weight"), m));

        LoraAdapter lora = LoraAdapter.create(weights, new LoraAdapter.Settings(2, 4, 0, false, List.of("all"), List.of()), 1);
        long adapted = weights.tensors().keySet().stream().filter(n -> lora.pair(n) != null).count();
        assertEquals(2 * 7, adapted, "the decoder's seven linears in each of the two layers");
        weights.tensors().keySet().stream().filter(n -> lora.pair(n) != null)
                .forEach(n -> assertEquals(ModelLayout.Part.LANGUAGE_MODEL, ModelLayout.partOf(n), n));
        LoraAdapter gate = LoraAdapter.create(weights, new LoraAdapter.Settings(2, 4, 0, false, List.of("gate_proj"), List.of()), 1);
        assertEquals(2, weights.tensors().keySet().stream().filter(n -> gate.pair(n) != null).count(),
                "lora_target gate_proj: the decoder's, not the vision blocks'");
    }

    /** The embed step runs the vision tower: its weights are the embed step's, and it trains when they do. */
    @Test
    void theEmbedStepOwnsTheVisionTower() throws Exception {
        Path in = dir("qwen2_vl/hub");
        ModelConfig cfg = ModelConfig.load(in);
        ModelWeights weights = ModelWeights.load(in, cfg);
        CausalLm model = new CausalLm(cfg, weights);
        List<String> embed = model.embeddingWeights();
        assertEquals(ModelLayout.EMBEDDING, embed.get(0));
        assertTrue(embed.containsAll(weights.tensors().keySet().stream().filter(n -> n.startsWith("visual.")).toList()));
        assertFalse(model.embeddingTrains());
        List<String> tower = model.parameterNames(ModelLayout.Part.VISION_TOWER);
        List<String> merger = model.parameterNames(ModelLayout.Part.MULTI_MODAL_PROJECTOR);
        List<String> lm = model.parameterNames(ModelLayout.Part.LANGUAGE_MODEL);
        assertEquals(1 + 2 * 12, tower.size(), "patch_embed and two blocks of 12 tensors");
        assertEquals(List.of("visual.merger.ln_q.weight", "visual.merger.ln_q.bias", "visual.merger.mlp.0.weight",
                "visual.merger.mlp.0.bias", "visual.merger.mlp.2.weight", "visual.merger.mlp.2.bias"), merger);
        assertEquals(weights.tensors().size(), tower.size() + merger.size() + lm.size());
        assertTrue(lm.contains(ModelLayout.EMBEDDING) && lm.stream().noneMatch(n -> n.startsWith("visual.")));
        weights.get("visual.merger.mlp.2.bias").requires_grad_(true);
        assertTrue(model.embeddingTrains(), "a trainable merger makes the embed step train");
        weights.get("visual.merger.mlp.2.bias").requires_grad_(false);
    }

    @Test
    void imageTokensThatDoNotMatchTheImagesAreRefused() throws Exception {
        Path in = dir("qwen2_vl/hub");
        ModelConfig cfg = ModelConfig.load(in);
        CausalLm model = new CausalLm(cfg, ModelWeights.load(in, cfg));
        int[][] grid = {{1, 2, 4}};                                             // two image tokens
        VisionInputs image = new VisionInputs(Qwen2VlTest.pixels(grid, 0, 1, cfg.visionLanguage().vision().patchValues()), grid);
        Tensor three = Tensor.create(new long[] {5, 92, 90, 90, 90, 93}, 1, 6);
        try (NoGradGuard g = new NoGradGuard()) {
            String m = assertThrows(UserError.class, () -> model.ropeIndex(three, null, image)).getMessage();
            assertTrue(m.contains("needs 2 consecutive image tokens"), m);
            m = assertThrows(UserError.class, () -> model.embed(three, image)).getMessage();
            assertTrue(m.contains("3 image tokens") && m.contains("give 2 features"), m);
            Tensor video = Tensor.create(new long[] {5, 91, 6}, 1, 3);
            m = assertThrows(UserError.class, () -> model.ropeIndex(video, null, null)).getMessage();
            assertTrue(m.contains("video_token_id 91") && m.contains("videos are not supported"), m);
        }
    }

    static ObjectNode config(String fixture) throws Exception {
        return (ObjectNode) JSON.readTree(dir(fixture).resolve("config.json").toFile());
    }

    static String refusal(ObjectNode c) {
        return assertThrows(UserError.class, () -> ModelConfig.fromJson(c, "config.json")).getMessage();
    }

    @Test
    void badConfigsAreRefusedByField() throws Exception {
        ObjectNode hub = config("qwen2_vl/hub");
        ((com.fasterxml.jackson.databind.node.ArrayNode) hub.get("rope_scaling").get("mrope_section")).set(0, 3);
        String m = refusal(hub);
        assertTrue(m.contains("rope_scaling.mrope_section [3, 3, 3]") && m.contains("sum to head_dim / 2 = 8"), m);

        ObjectNode t5 = config("qwen2_vl/t5");
        ((ObjectNode) t5.get("text_config").get("rope_parameters")).putArray("mrope_section").add(4).add(5);
        m = refusal(t5);
        assertTrue(m.contains("rope_parameters.mrope_section [4, 5]") && m.contains("but sums to 9"), m);

        ObjectNode noVision = config("qwen2_vl/t5");
        noVision.remove("vision_config");
        m = refusal(noVision);
        assertTrue(m.contains("needs a 'vision_config' object"), m);

        ObjectNode wide = config("qwen2_5_vl/hub");
        ((ObjectNode) wide.get("vision_config")).put("out_hidden_size", 48);
        ((ObjectNode) wide.get("vision_config")).put("window_size", 50);
        m = refusal(wide);
        assertTrue(m.contains("vision_config.out_hidden_size (48, the merger's output) must equal the language model's "
                + "hidden_size (32)") && m.contains("vision_config.window_size (50) must be a multiple"), m);

        ObjectNode scaled = config("qwen2_vl/hub");
        ((ObjectNode) scaled.get("rope_scaling")).put("type", "yarn");
        m = refusal(scaled);
        assertTrue(m.contains("rope type 'yarn' is not supported for qwen2_vl"), m);
    }
}
