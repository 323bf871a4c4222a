package dev.sparksft.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sparksft.config.ConfigProblems;
import dev.sparksft.config.FinetuningArguments;
import dev.sparksft.config.SftConfig;
import dev.sparksft.runtime.Torch;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
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

/**
 * OFT on the tiny Qwen2 (hidden 32, 4 heads of 8, 2 kv heads, intermediate 64, q/k/v biases):
 * the rotation against PEFT's formula re-created in numpy (src/test/python/make_oft_fixtures.py),
 * the closed forms of the Cayley transform, identity at start, merging, PEFT's files and the
 * configuration errors.
 */
class OftAdapterTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    @TempDir
    static Path dir;
    static Path modelDir;

    @BeforeAll
    static void tinyModel() throws Exception {
        Torch.load(1);
        modelDir = dir.resolve("model");
        TinyModel.write(new TinyModel.Options("qwen2", modelDir, 5, 32, 2, 4, 2, 64, null, 0, 0));
    }

    static FinetuningArguments oft(String extra) throws Exception {
        Path f = Files.createTempFile(dir, "oft", ".yaml");
        Files.writeString(f, "model_name_or_path: m\ntemplate: chatml\ndataset: d\nfinetuning_type: oft\n" + extra);
        return SftConfig.load(f, List.of()).finetuning();
    }

    static OftAdapter.Settings settings(FinetuningArguments ft) {
        return new OftAdapter.Settings(ft.oftRank(), ft.oftBlockSize(), ft.moduleDropout(), ft.oftTarget(),
                ft.additionalTarget());
    }

    /** An adapter with random, non-zero parameters (fresh ones are zero: R = I). */
    static CausalLm adapted(CausalLm base, FinetuningArguments ft) {
        OftAdapter adapter = OftAdapter.create(base.weights(), settings(ft));
        torch.manual_seed(11);
        adapter.tensors().values().forEach(t -> t.copy_(torch.randn(t.sizes().vec().get()).mul_(new Scalar(0.1))));
        return base.withAdapter(adapter);
    }

    static Tensor logits(CausalLm m) {
        Tensor ids = Tensor.create(new long[] {1, 5, 9, 2, 7, 3, 4, 8, 6, 10}, 2, 5);
        Tensor mask = torch.ones(2, 5).to(torch.ScalarType.Long);
        return m.forward(ids, mask, Tensors.positions(2, 5));
    }

    /** A float32 tensor of {@code shape} from nested JSON arrays. */
    static Tensor tensor(JsonNode nested, long... shape) {
        List<Double> flat = new ArrayList<>();
        flatten(nested, flat);
        float[] data = new float[flat.size()];
        for (int i = 0; i < data.length; i++) {
            data[i] = flat.get(i).floatValue();
        }
        return Tensor.create(data, shape);
    }

    private static void flatten(JsonNode n, List<Double> out) {
        if (n.isArray()) {
            n.forEach(c -> flatten(c, out));
        } else {
            out.add(n.asDouble());
        }
    }

    static double maxDiff(Tensor a, Tensor b) {
        return a.sub(b).abs().max().item_double();
    }

    @Test
    void rotationMergeAndInputRotationEqualPeftsFormulaInNumpy() throws Exception {
        JsonNode cases;
        try (InputStream in = getClass().getResourceAsStream("/oft/rotation.json")) {
            cases = JSON.readTree(in).get("cases");
        }
        assertEquals(4, cases.size());
        for (JsonNode c : cases) {
            long k = c.get("blocks").asLong();
            long b = c.get("block_size").asLong();
            OftAdapter a = new OftAdapter(0, (int) b, 0, c.get("use_cayley_neumann").asBoolean(),
                    c.get("num_cayley_neumann_terms").asInt(), List.of(), List.of(), Map.of());
            Tensor weight = tensor(c.get("weight"), k, b * (b - 1) / 2);
            Tensor r = a.orthogonal(weight);
            // float32 against float64: a few ulps of values near 1
            String name = c.get("name").asText();
            assertEquals(0, maxDiff(r, tensor(c.get("R"), k, b, b)), 1e-6, name + ": R");
            assertEquals(0, maxDiff(a.rotate(tensor(c.get("x"), 2, k * b), weight), tensor(c.get("rotated"), 2, k * b)),
                    1e-5, name + ": x R");
            assertEquals(0, maxDiff(OftAdapter.merged(tensor(c.get("W"), 3, k * b), r), tensor(c.get("merged"), 3, k * b)),
                    1e-5, name + ": W R^T");
        }
    }

    @Test
    void exactCayleyIsOrthogonalAndTheSeriesApproximatesItsTranspose() {
        int b = 8;
        torch.manual_seed(3);
        Tensor weight = torch.randn(3, b * (b - 1) / 2).mul_(new Scalar(0.01));
        OftAdapter exact = new OftAdapter(0, b, 0, false, 5, List.of(), List.of(), Map.of());
        OftAdapter series = new OftAdapter(0, b, 0, true, 5, List.of(), List.of(), Map.of());
        Tensor r = exact.orthogonal(weight);                                            // (3, 8, 8)
        Tensor eye = torch.eye(b).expand(3, b, b);
        assertEquals(0, maxDiff(torch.bmm(r, r.transpose(1, 2)), eye), 1e-6, "R R^T = I");
        // the series sums (I + Q)(I - Q)^-1 = R_exact^T to Q^4: its error is of the order |Q|^4 (|Q| <= 0.06 here)
        Tensor approx = series.orthogonal(weight);
        double q = weight.abs().max().item_double() * b;                               // a bound on |Q|'s row sums
        double err = maxDiff(approx, r.transpose(1, 2));
        assertTrue(err < 2 * Math.pow(q, 4) + 1e-6, "series vs exact transpose: " + err + ", |Q| <= " + q);
        // ... and not R_exact itself: they differ by about 4Q
        assertTrue(maxDiff(approx, r) > weight.abs().max().item_double(), "the series is (I + Q)(I - Q)^-1");
        // 1 term: I; 2 terms: I + 2Q
        Tensor one = new OftAdapter(0, b, 0, true, 1, List.of(), List.of(), Map.of()).orthogonal(weight);
        assertEquals(0, maxDiff(one, eye), 0);
        Tensor two = new OftAdapter(0, b, 0, true, 2, List.of(), List.of(), Map.of()).orthogonal(weight);
        Tensor skew = eye.sub(r).matmul(torch.linalg_inv(eye.add(r)));                  // Cayley is an involution: Q = (I - R)(I + R)^-1
        assertEquals(0, maxDiff(two, eye.add(skew, new Scalar(2))), 1e-6, "I + 2Q");
    }

    @Test
    void blocksFollowPeftsAdjustment() {
        assertEquals(new OftAdapter.Blocks(1, 32), OftAdapter.blocks(32, 0, 32), "hidden 32, block 32: one block");
        assertEquals(new OftAdapter.Blocks(2, 32), OftAdapter.blocks(64, 0, 32), "intermediate 64: two");
        assertEquals(new OftAdapter.Blocks(2, 24), OftAdapter.blocks(48, 0, 32), "32 -> nearer divisor 24 (not 48)");
        assertEquals(new OftAdapter.Blocks(1, 16), OftAdapter.blocks(16, 0, 32), "larger than in_features: in_features");
        assertEquals(new OftAdapter.Blocks(1, 37), OftAdapter.blocks(37, 0, 32), "a prime: 37 is nearer than 1");
        assertEquals(new OftAdapter.Blocks(2, 32), OftAdapter.blocks(64, 3, 0), "rank 3 -> 2 (ties go lower)");
        assertEquals(new OftAdapter.Blocks(4, 16), OftAdapter.blocks(64, 4, 0), "rank 4: blocks of 16");
        assertEquals(496, OftAdapter.blocks(32, 0, 32).numParameters(), "32 x 31 / 2");
    }

    @Test
    void aBlockSizeThatDividesNoLayerIsMovedAsPeftMovesIt() throws Exception {
        // 24 divides neither 32 nor 64: 16 and 32 are both 8 away, and PEFT takes the lower
        CausalLm base = CausalLm.load(modelDir, 0);
        OftAdapter a = OftAdapter.create(base.weights(), settings(oft("oft_block_size: 24\n")));
        assertEquals("[2, 120]", java.util.Arrays.toString(a.rotation("model.layers.0.self_attn.q_proj.weight").sizes().vec().get()));
        assertEquals("[4, 120]", java.util.Arrays.toString(a.rotation("model.layers.1.mlp.down_proj.weight").sizes().vec().get()));
        // oft_rank: 3 divides neither: 2 and 4 are both 1 away, so 2 blocks, of 16 (in 32) and of 32 (in 64)
        OftAdapter r = OftAdapter.create(base.weights(), settings(oft("oft_rank: 3\noft_block_size: 0\n")));
        assertEquals("[2, 120]", java.util.Arrays.toString(r.rotation("model.layers.0.self_attn.k_proj.weight").sizes().vec().get()));
        assertEquals("[2, 496]", java.util.Arrays.toString(r.rotation("model.layers.0.mlp.down_proj.weight").sizes().vec().get()));
    }

    @Test
    void aFreshAdapterChangesNothingAndMergingGivesTheSameOutputs() throws Exception {
        CausalLm base = CausalLm.load(modelDir, 0);
        Tensor before = logits(base);
        FinetuningArguments ft = oft("oft_block_size: 8\n");
        OftAdapter fresh = OftAdapter.create(base.weights(), settings(ft));
        assertEquals(0, logits(base.withAdapter(fresh)).sub(before).abs().max().item_double(), 0.0,
                "oft_R starts at zero: R = I exactly");
        CausalLm withAdapter = adapted(base, ft);
        Tensor adapted = logits(withAdapter);
        double moved = adapted.sub(before).abs().max().item_double();
        assertTrue(moved > 1e-3, "the adapter must change the outputs, moved " + moved);
        withAdapter.adapter().mergeInto(base.weights());
        Tensor merged = logits(new CausalLm(base.config(), base.weights()));
        // float32: (x R) W^T against x (W R^T)^T, summed in different orders
        assertEquals(0, merged.sub(adapted).abs().max().item_double(), 1e-5);
    }

    @Test
    void savedAdapterHasPeftKeyNamesShapesAndConfigAndLoadsBackEqual() throws Exception {
        CausalLm base = CausalLm.load(modelDir, 0);
        FinetuningArguments ft = oft("oft_block_size: 8\noft_target: q_proj,down_proj\nadditional_target: norm\n"
                + "module_dropout: 0.1\n");
        CausalLm m = adapted(base, ft);
        Path out = dir.resolve("adapter");
        m.adapter().save(out, base.weights(), modelDir.toString());
        JsonNode h = LoraTest.header(out.resolve("adapter_model.safetensors"));
        Map<String, String> shapes = new TreeMap<>();
        for (Iterator<String> it = h.fieldNames(); it.hasNext(); ) {
            String k = it.next();
            if (!k.equals("__metadata__")) {
                shapes.put(k, h.get(k).get("dtype").asText() + h.get(k).get("shape"));
            }
        }
        // q_proj: in 32 = 4 blocks of 8, 28 upper-triangle entries each; down_proj: in 64 = 8 blocks
        Map<String, String> want = new TreeMap<>();
        for (int i = 0; i < 2; i++) {
            String p = "base_model.model.model.layers." + i + ".";
            want.put(p + "self_attn.q_proj.oft_R.weight", "F32[4,28]");
            want.put(p + "mlp.down_proj.oft_R.weight", "F32[8,28]");
        }
        want.put("base_model.model.model.norm.weight", "F32[32]");
        assertEquals(want, shapes);
        JsonNode c = JSON.readTree(out.resolve("adapter_config.json").toFile());
        assertEquals("OFT", c.get("peft_type").asText());
        assertEquals(0, c.get("r").asInt(), "r and oft_block_size as configured; PEFT derives each layer's blocks");
        assertEquals(8, c.get("oft_block_size").asInt());
        assertEquals(0.1, c.get("module_dropout").asDouble());
        assertEquals("[\"down_proj\",\"q_proj\"]", c.get("target_modules").toString());
        assertEquals("[\"norm\"]", c.get("modules_to_save").toString());
        assertTrue(c.get("use_cayley_neumann").asBoolean());
        assertEquals(5, c.get("num_cayley_neumann_terms").asInt());
        assertEquals(false, c.get("coft").asBoolean());
        assertEquals(false, c.get("block_share").asBoolean());
        assertEquals(6e-5, c.get("eps").asDouble());
        assertEquals("CAUSAL_LM", c.get("task_type").asText());
        assertEquals("0.18.1", c.get("peft_version").asText(), "PEFT warns about Cayley-Neumann files older than 0.18");
        assertEquals(modelDir.toString(), c.get("base_model_name_or_path").asText());

        CausalLm fresh = CausalLm.load(modelDir, 0);
        Adapter loaded = Adapter.load(out, fresh.weights(), 0);
        assertTrue(loaded instanceof OftAdapter);
        assertEquals(0, logits(fresh.withAdapter(loaded)).sub(logits(m)).abs().max().item_double(), 0.0,
                "the same float32 parameters, the same outputs");
    }

    @Test
    void configurationMistakesNameTheKeyTheValueAndTheFix() throws Exception {
        var e = assertThrows(ConfigProblems.class, () -> oft("oft_rank: 4\n"));
        assertTrue(e.getMessage().contains("oft_rank: 4 and oft_block_size: 32 are both set")
                && e.getMessage().contains("set oft_block_size: 0 to use oft_rank"), e.getMessage());
        e = assertThrows(ConfigProblems.class, () -> oft("oft_block_size: 0\n"));
        assertTrue(e.getMessage().contains("oft_rank: 0 and oft_block_size: 0") && e.getMessage().contains("set oft_block_size"),
                e.getMessage());
        e = assertThrows(ConfigProblems.class, () -> oft("oft_block_size: -8\n"));
        assertTrue(e.getMessage().contains("oft_block_size -8"), e.getMessage());
        e = assertThrows(ConfigProblems.class, () -> oft("module_dropout: 1.5\n"));
        assertTrue(e.getMessage().contains("module_dropout must be in [0, 1), got 1.5"), e.getMessage());
        e = assertThrows(ConfigProblems.class, () -> oft("use_galore: true\n"));
        assertTrue(e.getMessage().contains("Cannot use OFT with GaLore"), e.getMessage());
        assertEquals(4, oft("oft_rank: 4\noft_block_size: 0\n").oftRank());

        CausalLm base = CausalLm.load(modelDir, 0);
        var bad = assertThrows(IllegalArgumentException.class,
                () -> OftAdapter.create(base.weights(), settings(oft("oft_target: attention\n"))));
        assertTrue(bad.getMessage().contains("oft_target: [attention]") && bad.getMessage().contains("q_proj"),
                bad.getMessage());
        bad = assertThrows(IllegalArgumentException.class,
                () -> OftAdapter.create(base.weights(), settings(oft("additional_target: vision_tower\n"))));
        assertTrue(bad.getMessage().contains("additional_target"), bad.getMessage());
        // an adapter saved with blocks of 8 read with a config that says 16
        Path out = dir.resolve("bad-adapter");
        adapted(base, oft("oft_block_size: 8\n")).adapter().save(out, base.weights(), "m");
        Path config = out.resolve("adapter_config.json");
        Files.writeString(config, Files.readString(config).replace("\"oft_block_size\" : 8", "\"oft_block_size\" : 16"));
        bad = assertThrows(IllegalArgumentException.class, () -> Adapter.load(out, base.weights(), 0));
        assertTrue(bad.getMessage().contains("oft_R.weight") && bad.getMessage().contains("oft_block_size = 16"),
                bad.getMessage());
        Files.writeString(config, Files.readString(config).replace("\"coft\" : false", "\"coft\" : true"));
        bad = assertThrows(IllegalArgumentException.class, () -> Adapter.load(out, base.weights(), 0));
        assertTrue(bad.getMessage().contains("coft: true is not supported"), bad.getMessage());
    }
}
