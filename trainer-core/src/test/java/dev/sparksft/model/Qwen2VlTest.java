package dev.sparksft.model;

import dev.sparksft.image.VisionInputs;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sparksft.loss.CausalLmLoss;
import dev.sparksft.runtime.Torch;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Qwen2-VL and Qwen2.5-VL against transformers 5.17 in float64 (src/test/python/make_qwen2vl_fixtures.py):
 * tiny random models with bf16-valued weights, a batch of three images of different grids (two in row 0,
 * one in row 1, which is padded on the right). Java computes in float32. Tolerances: get_rope_index's
 * positions and rope deltas exactly; the vision tower's output and the logits within {@value #ABS_TOLERANCE}
 * absolute (of values up to about 4); the mean loss within {@value #LOSS_RELATIVE} relative.
 * Fixture directories: {@code hub} (the hub checkpoints' layout) and, for qwen2_vl, {@code t5} (transformers 5's).
 */
class Qwen2VlTest {
    static final double ABS_TOLERANCE = 1e-4;
    static final double LOSS_RELATIVE = 1e-5;

    @BeforeAll
    static void loadTorch() {
        Torch.load(1);
    }

    static Path fixture(String name) throws Exception {
        return Paths.get(Qwen2VlTest.class.getResource("/qwen2vl/" + name + "/expected.json").toURI()).getParent();
    }

    static JsonNode expected(String name) throws Exception {
        return new ObjectMapper().readTree(fixture(name).resolve("expected.json").toFile());
    }

    /** The model of fixture {@code name} ("qwen2_vl/hub", ...): its model directory. */
    static CausalLm load(String model, String layout) throws Exception {
        Path dir = fixture(model).resolve(layout);
        ModelConfig cfg = ModelConfig.load(dir);
        return new CausalLm(cfg, ModelWeights.load(dir, cfg));
    }

    /** The fixture's pixel_values: pixel(i) = sin(0.37 i + 0.11) cos(0.013 i), as the generator writes them. */
    static VisionInputs images(JsonNode expected, int patchValues) {
        int[][] grids = new ObjectMapper().convertValue(expected.get("image_grid_thw"), int[][].class);
        return new VisionInputs(pixels(grids, 0, grids.length, patchValues), grids);
    }

    /** The pixel_values rows of images {@code from}..{@code to} - 1. */
    static Tensor pixels(int[][] grids, int from, int to, int patchValues) {
        long before = 0;
        long patches = 0;
        for (int i = 0; i < to; i++) {
            long n = (long) grids[i][0] * grids[i][1] * grids[i][2];
            if (i < from) {
                before += n;
            } else {
                patches += n;
            }
        }
        float[] v = new float[(int) (patches * patchValues)];
        long offset = before * patchValues;
        for (int i = 0; i < v.length; i++) {
            double x = offset + i;
            v[i] = (float) (Math.sin(0.37 * x + 0.11) * Math.cos(0.013 * x));
        }
        return Tensor.create(v, patches, patchValues);
    }

    static double[] f64(Path file) throws Exception {
        ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
        double[] out = new double[b.capacity() / 8];
        b.asDoubleBuffer().get(out);
        return out;
    }

    static long[] longs(Tensor t) {
        Tensor c = t.to(ScalarType.Long).contiguous();
        long[] out = new long[(int) c.numel()];
        new org.bytedeco.javacpp.LongPointer(c.data_ptr()).capacity(out.length).get(out);
        return out;
    }

    /** The largest |got - want| over the rows of real tokens (mask null: all), of (batch, seq, width) values. */
    static double maxAbsDiff(float[] got, double[] want, long[] mask, long width) {
        assertEquals(want.length, got.length, "element count");
        double worst = 0;
        for (int i = 0; i < got.length; i++) {
            if (mask == null || mask[(int) (i / width)] != 0) {
                worst = Math.max(worst, Math.abs(got[i] - want[i]));
            }
        }
        return worst;
    }

    @ParameterizedTest
    @ValueSource(strings = {"qwen2_vl", "qwen2_5_vl"})
    void ropeIndexEqualsGetRopeIndex(String name) throws Exception {
        JsonNode e = expected(name);
        try (PointerScope scope = new PointerScope()) {
            CausalLm model = load(name, "hub");
            Tensor ids = Tensors.longs(e.get("input_ids"));
            Tensor mask = Tensors.longs(e.get("attention_mask"));
            MropePositions pos = model.ropeIndex(ids, mask, images(e, model.visionLanguage().vision().patchValues()));
            long[] want = flatten(new ObjectMapper().convertValue(e.get("position_ids"), long[][][].class));
            assertArrayEquals(new long[] {3, ids.size(0), ids.size(1)}, pos.positionIds().sizes().vec().get());
            assertArrayEquals(want, longs(pos.positionIds()), name + " position ids");
            assertArrayEquals(new ObjectMapper().convertValue(e.get("rope_deltas"), long[].class), pos.ropeDeltas(),
                    name + " rope deltas");
        }
    }

    static long[] flatten(long[][][] a) {
        return java.util.Arrays.stream(a).flatMap(java.util.Arrays::stream).flatMapToLong(java.util.Arrays::stream).toArray();
    }

    @ParameterizedTest
    @ValueSource(strings = {"qwen2_vl", "qwen2_5_vl"})
    void visionTowerMatchesReference(String name) throws Exception {
        JsonNode e = expected(name);
        try (PointerScope scope = new PointerScope(); NoGradGuard g = new NoGradGuard()) {
            CausalLm model = load(name, "hub");
            Tensor features = model.imageFeatures(images(e, model.visionLanguage().vision().patchValues()));
            assertArrayEquals(new ObjectMapper().convertValue(e.get("vision_shape"), long[].class),
                    features.sizes().vec().get());
            double worst = maxAbsDiff(Tensors.floats(features), f64(fixture(name).resolve("vision.f64")), null, 1);
            System.out.printf("qwen2vl %s: vision tower max |error| = %.2e%n", name, worst);
            assertTrue(worst < ABS_TOLERANCE, name + " vision tower output differs by " + worst);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"qwen2_vl/hub", "qwen2_vl/t5", "qwen2_5_vl/hub"})
    void logitsAndLossMatchReference(String fixture) throws Exception {
        String name = fixture.substring(0, fixture.indexOf('/'));
        JsonNode e = expected(name);
        try (PointerScope scope = new PointerScope(); NoGradGuard g = new NoGradGuard()) {
            CausalLm model = load(name, fixture.substring(name.length() + 1));
            Tensor ids = Tensors.longs(e.get("input_ids"));
            Tensor mask = Tensors.longs(e.get("attention_mask"));
            Tensor labels = Tensors.longs(e.get("labels"));
            VisionInputs images = images(e, model.visionLanguage().vision().patchValues());
            Tensor positions = model.ropeIndex(ids, mask, images).positionIds();
            Tensor logits = model.forward(ids, mask, positions, null, images);
            assertArrayEquals(new ObjectMapper().convertValue(e.get("logits_shape"), long[].class), logits.sizes().vec().get());
            double worst = maxAbsDiff(Tensors.floats(logits), f64(fixture(name).resolve("logits.f64")), longs(mask),
                    logits.size(2));
            double loss = CausalLmLoss.mean(logits, labels);
            double want = e.get("loss").asDouble();
            System.out.printf("qwen2vl %s: logits max |error| = %.2e, loss %.8f vs %.8f (rel %.2e)%n", fixture, worst,
                    loss, want, Math.abs(loss - want) / want);
            assertTrue(worst < ABS_TOLERANCE, fixture + " logits differ by " + worst);
            assertEquals(want, loss, want * LOSS_RELATIVE, fixture + " loss");

            // the embed / context / layer / head split gives the same logits (activation checkpointing walks it)
            Tensor x = model.embed(ids, images);
            CausalLm.Context ctx = model.context(mask, positions, null);
            for (int i = 0; i < model.numLayers(); i++) {
                x = model.layer(i, x, ctx);
            }
            assertTrue(model.head(x).equal(logits), "embed / layer / head equals forward");
        }
    }

    /**
     * Training through the vision tower: the gradient of the mean loss for vision block 0's qkv bias and norm1 weight,
     * the merger's last bias and decoder layer 0's q_proj bias equals the reference's within 1e-4 of each tensor's
     * largest |gradient| (backward through the merger, the window reorder and the masked scatter).
     */
    @ParameterizedTest
    @ValueSource(strings = {"qwen2_vl", "qwen2_5_vl"})
    void gradientsThroughTheVisionTowerMatchReference(String name) throws Exception {
        JsonNode e = expected(name);
        try (PointerScope scope = new PointerScope()) {
            Path dir = fixture(name).resolve("hub");
            ModelConfig cfg = ModelConfig.load(dir);
            ModelWeights weights = ModelWeights.load(dir, cfg);
            java.util.List<String> names = new java.util.ArrayList<>();
            e.get("gradients").fieldNames().forEachRemaining(names::add);
            names.forEach(n -> weights.get(n).requires_grad_(true));
            CausalLm model = new CausalLm(cfg, weights);
            Tensor ids = Tensors.longs(e.get("input_ids"));
            Tensor mask = Tensors.longs(e.get("attention_mask"));
            Tensor labels = Tensors.longs(e.get("labels"));
            VisionInputs images = images(e, cfg.visionLanguage().vision().patchValues());
            Tensor logits = model.forward(ids, mask, model.ropeIndex(ids, mask, images).positionIds(), null, images);
            CausalLmLoss.tokenLosses(logits, labels).sum()
                    .div(new org.bytedeco.pytorch.Scalar((double) CausalLmLoss.countTargets(labels))).backward();
            for (String n : names) {
                float[] got = Tensors.floats(weights.get(n).grad());
                JsonNode want = e.get("gradients").get(n);
                double scale = 0;
                double worst = 0;
                for (int i = 0; i < got.length; i++) {
                    scale = Math.max(scale, Math.abs(want.get(i).asDouble()));
                    worst = Math.max(worst, Math.abs(got[i] - want.get(i).asDouble()));
                }
                assertEquals(want.size(), got.length, n);
                System.out.printf("qwen2vl %s: d loss / d %s max |error| / max |grad| = %.2e%n", name, n, worst / scale);
                assertTrue(scale > 0 && worst < 1e-4 * scale, name + " " + n + " gradient differs by " + worst);
            }
        }
    }

    /** bf16 autocast and pure bf16 weights (pixel values cast to them) give the reference's loss within 2e-2 relative. */
    @ParameterizedTest
    @ValueSource(strings = {"qwen2_vl", "qwen2_5_vl"})
    void bf16LossIsWithinTwoPercentOfTheReference(String name) throws Exception {
        JsonNode e = expected(name);
        try (PointerScope scope = new PointerScope(); NoGradGuard g = new NoGradGuard()) {
            Path dir = fixture(name).resolve("hub");
            ModelConfig cfg = ModelConfig.load(dir);
            ModelWeights weights = ModelWeights.load(dir, cfg);
            Tensor ids = Tensors.longs(e.get("input_ids"));
            Tensor mask = Tensors.longs(e.get("attention_mask"));
            Tensor labels = Tensors.longs(e.get("labels"));
            VisionInputs images = images(e, cfg.visionLanguage().vision().patchValues());
            CausalLm model = new CausalLm(cfg, weights);
            Tensor positions = model.ropeIndex(ids, mask, images).positionIds();
            double want = e.get("loss").asDouble();
            double autocast;
            try (dev.sparksft.runtime.Autocast a = dev.sparksft.runtime.Autocast.cpuBf16(true)) {
                autocast = CausalLmLoss.mean(model.forward(ids, mask, positions, null, images), labels);
            }
            java.util.Map<String, Tensor> bf16 = new java.util.LinkedHashMap<>();
            weights.tensors().forEach((n, t) -> bf16.put(n, t.to(Dtype.BF16.scalarType)));
            double pure = CausalLmLoss.mean(new CausalLm(cfg, new ModelWeights(bf16, java.util.Map.of(), java.util.Map.of()))
                    .forward(ids, mask, positions, null, images).to(ScalarType.Float), labels);
            System.out.printf("qwen2vl %s: bf16 autocast loss %.5f (rel %.2e), pure bf16 %.5f (rel %.2e), reference %.5f%n",
                    name, autocast, Math.abs(autocast - want) / want, pure, Math.abs(pure - want) / want, want);
            assertEquals(want, autocast, 2e-2 * want, "bf16 autocast");
            assertEquals(want, pure, 2e-2 * want, "pure bf16");
        }
    }

    /**
     * Left padding (how generation batches prompts): row 1 padded on the left gets the same M-RoPE positions and
     * logits at its real tokens as padded on the right (within 1e-5: the attention runs another mask path).
     */
    @ParameterizedTest
    @ValueSource(strings = {"qwen2_vl", "qwen2_5_vl"})
    void leftPaddingGivesTheSamePositionsAndLogits(String name) throws Exception {
        JsonNode e = expected(name);
        try (PointerScope scope = new PointerScope(); NoGradGuard g = new NoGradGuard()) {
            CausalLm model = load(name, "hub");
            Tensor ids = Tensors.longs(e.get("input_ids"));
            Tensor mask = Tensors.longs(e.get("attention_mask"));
            long seq = ids.size(1);
            long real = mask.get(1).sum().item_long();
            long pad = seq - real;
            Tensor leftIds = ids.clone();
            Tensor leftMask = mask.clone();
            leftIds.get(1).copy_(torch.cat(new TensorVector(ids.get(1).narrow(0, real, pad), ids.get(1).narrow(0, 0, real))));
            leftMask.get(1).copy_(torch.cat(new TensorVector(mask.get(1).narrow(0, real, pad), mask.get(1).narrow(0, 0, real))));
            VisionInputs images = images(e, model.visionLanguage().vision().patchValues());
            MropePositions right = model.ropeIndex(ids, mask, images);
            MropePositions left = model.ropeIndex(leftIds, leftMask, images);
            assertTrue(left.positionIds().select(1, 1).narrow(1, pad, real).equal(right.positionIds().select(1, 1).narrow(1, 0, real)));
            assertArrayEquals(right.ropeDeltas(), left.ropeDeltas());
            Tensor a = model.forward(ids, mask, right.positionIds(), null, images).get(1).narrow(0, 0, real);
            Tensor b = model.forward(leftIds, leftMask, left.positionIds(), null, images).get(1).narrow(0, pad, real);
            double worst = a.sub(b).abs().max().item_double();
            System.out.printf("qwen2vl %s: left vs right padding max |logit difference| = %.2e%n", name, worst);
            assertTrue(worst < 1e-5, name + " left padding changes row 1's logits by " + worst);
        }
    }

    /** A text-only batch: M-RoPE positions of no image, and plain (batch, seq) positions, give the reference's logits. */
    @ParameterizedTest
    @ValueSource(strings = {"qwen2_vl", "qwen2_5_vl"})
    void textOnlyBatchMatchesReference(String name) throws Exception {
        JsonNode e = expected(name);
        try (PointerScope scope = new PointerScope(); NoGradGuard g = new NoGradGuard()) {
            CausalLm model = load(name, "hub");
            Tensor ids = Tensors.longs(e.get("text_input_ids"));
            Tensor mask = ids.new_ones(ids.sizes().vec().get());
            MropePositions pos = model.ropeIndex(ids, mask, null);
            Tensor plain = Tensors.positions(ids.size(0), ids.size(1));
            assertTrue(pos.positionIds().equal(plain.unsqueeze(0).expand(3, ids.size(0), ids.size(1))),
                    "no image: every axis at 0, 1, ...");
            assertArrayEquals(new long[] {0}, pos.ropeDeltas());
            double[] want = f64(fixture(name).resolve("text_logits.f64"));
            double mrope = maxAbsDiff(Tensors.floats(model.forward(ids, mask, pos.positionIds(), null, null)), want, null, 1);
            double oneD = maxAbsDiff(Tensors.floats(model.forward(ids, mask, plain)), want, null, 1);
            System.out.printf("qwen2vl %s: text-only logits max |error| = %.2e (M-RoPE), %.2e (1-D)%n", name, mrope, oneD);
            assertTrue(mrope < ABS_TOLERANCE && oneD < ABS_TOLERANCE, name + " text-only logits differ by " + mrope + ", " + oneD);
        }
    }

    /**
     * Greedy decoding with the KV cache of row 0's start and its first image (rope delta -3): a prefill with the
     * image and M-RoPE, then decode steps at their 1-D position + rope delta, give transformers' generate() tokens
     * (which the fixture checks differ from decoding without the delta).
     */
    @ParameterizedTest
    @ValueSource(strings = {"qwen2_vl", "qwen2_5_vl"})
    void greedyDecodingWithAnImageMatchesGenerate(String name) throws Exception {
        JsonNode e = expected(name);
        try (PointerScope scope = new PointerScope(); NoGradGuard g = new NoGradGuard()) {
            CausalLm model = load(name, "hub");
            int[][] grids = new ObjectMapper().convertValue(e.get("image_grid_thw"), int[][].class);
            int[][] first = {grids[0]};
            VisionInputs image = new VisionInputs(pixels(grids, 0, 1, model.visionLanguage().vision().patchValues()), first);
            long[] prompt = new ObjectMapper().convertValue(e.get("greedy_prompt"), long[].class);
            long[] want = new ObjectMapper().convertValue(e.get("greedy_tokens"), long[].class);
            assertTrue(!java.util.Arrays.equals(want, new ObjectMapper().convertValue(
                    e.get("greedy_tokens_without_rope_deltas"), long[].class)), "the fixture tells the deltas apart");
            int n = prompt.length;
            Tensor ids = Tensor.create(prompt, 1, n);
            Tensor mask = ids.new_ones(new long[] {1, n + want.length});
            KvCache cache = new KvCache(model.config(), 1, n + want.length, model.weights().get(ModelLayout.EMBEDDING));
            MropePositions pos = model.ropeIndex(ids, mask.narrow(1, 0, n), image);
            Tensor logits = model.forward(ids, mask.narrow(1, 0, n), pos.positionIds(), cache, image);
            long[] got = new long[want.length];
            got[0] = logits.select(1, n - 1).argmax().item_long();
            for (int s = 1; s < want.length; s++) {
                Tensor next = Tensor.create(new long[] {got[s - 1]}, 1, 1);
                Tensor text = Tensor.create(new long[] {n + s - 1}, 1, 1);   // the new token's 1-D position
                logits = model.forward(next, mask.narrow(1, 0, n + s), pos.decodePositions(text), cache, null);
                got[s] = logits.select(1, 0).argmax().item_long();
            }
            assertArrayEquals(want, got, name + " greedy tokens");
        }
    }
}
