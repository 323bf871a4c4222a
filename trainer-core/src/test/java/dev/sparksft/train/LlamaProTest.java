package dev.sparksft.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparksft.UserError;
import dev.sparksft.config.SftConfig;
import dev.sparksft.model.CausalLm;
import dev.sparksft.model.ModelConfig;
import dev.sparksft.model.ModelLayout;
import dev.sparksft.model.TinyModel;
import dev.sparksft.runtime.Torch;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * use_llama_pro on an 8-layer model: LLaMA-Factory's stride rule (stride = num_layers / n, layers
 * range(stride - 1, num_layers + stride - 1, stride)) for freeze tuning, and LoRA on those
 * layers' linears only (find_expanded_modules).
 */
class LlamaProTest {
    @TempDir
    static Path dir;
    static Path model;
    static ModelConfig cfg;

    @BeforeAll
    static void eightLayers() throws Exception {
        Torch.load(1);
        model = dir.resolve("model");
        TinyModel.write(new TinyModel.Options("llama", model, 0, 16, 8, 2, 1, 32, null, 0, 0));
        cfg = ModelConfig.load(model);
    }

    static SftConfig config(String extra) throws Exception {
        Path f = Files.createTempFile(dir, "pro", ".yaml");
        Files.writeString(f, "model_name_or_path: " + model + "\ntemplate: chatml\ndataset: d\n" + extra);
        return SftConfig.load(f, List.of());
    }

    /** The decoder layers with at least one trainable weight. */
    static Set<Integer> trainedLayers(SftConfig c) {
        Set<String> names = new ModelLayout(cfg).expectedShapes().keySet();
        Set<Integer> layers = new TreeSet<>();
        for (String n : TrainableParameters.baseWeights(names, cfg, c.finetuning())) {
            layers.add(ModelLayout.layerIndex(n));
        }
        return layers;
    }

    @ParameterizedTest(name = "freeze_trainable_layers {0}")
    @CsvSource(delimiter = '|', value = {"2 | 3,7", "4 | 1,3,5,7", "8 | 0,1,2,3,4,5,6,7", "1 | 7"})
    void freezeTrainsEveryStrideThLayer(int n, String want) throws Exception {
        Set<Integer> expected = new TreeSet<>();
        for (String s : want.split(",")) {
            expected.add(Integer.parseInt(s));
        }
        assertEquals(expected, trainedLayers(config("finetuning_type: freeze\nuse_llama_pro: true\n"
                + "freeze_trainable_layers: " + n + "\n")));
        assertEquals(List.copyOf(expected), TrainableParameters.freezeLayers(8, n, true));
    }

    @Test
    void withoutLlamaProFreezeTrainsTheLastLayers() throws Exception {
        assertEquals(Set.of(6, 7), trainedLayers(config("finetuning_type: freeze\nfreeze_trainable_layers: 2\n")));
        assertEquals(Set.of(0, 1), trainedLayers(config("finetuning_type: freeze\nfreeze_trainable_layers: -2\n")));
    }

    @Test
    void freezeTrainableModulesApplyWithinTheExpandedLayers() throws Exception {
        Set<String> names = new ModelLayout(cfg).expectedShapes().keySet();
        Set<String> trains = TrainableParameters.baseWeights(names, cfg, config("finetuning_type: freeze\n"
                + "use_llama_pro: true\nfreeze_trainable_layers: 2\nfreeze_trainable_modules: mlp\n").finetuning());
        assertTrue(!trains.isEmpty() && trains.stream().allMatch(n -> n.matches("model\\.layers\\.[37]\\.mlp\\..*")), trains.toString());
    }

    @Test
    void loraAdaptsOnlyTheExpandedLayers() throws Exception {
        CausalLm m = Models.forTraining(config("finetuning_type: lora\nlora_rank: 2\nuse_llama_pro: true\n"
                + "freeze_trainable_layers: 4\nlora_target: q_proj,v_proj\n"), model, null, null, 0,
                new Device(torch.DeviceType.CPU));
        Set<String> adapted = new TreeSet<>(m.lora().tensors().keySet());
        Set<String> want = new TreeSet<>();
        for (int layer : List.of(1, 3, 5, 7)) {
            for (String leaf : List.of("q_proj", "v_proj")) {
                want.add("model.layers." + layer + ".self_attn." + leaf + ".lora_A.weight");
                want.add("model.layers." + layer + ".self_attn." + leaf + ".lora_B.weight");
            }
        }
        assertEquals(want, adapted);
    }

    @Test
    void aLayerCountThatIsNoMultipleIsRefused() throws Exception {
        SftConfig c = config("finetuning_type: freeze\nuse_llama_pro: true\nfreeze_trainable_layers: 3\n");
        UserError e = assertThrows(UserError.class, () -> trainedLayers(c));
        assertTrue(e.getMessage().contains("use_llama_pro") && e.getMessage().contains("num_hidden_layers 8")
                && e.getMessage().contains("freeze_trainable_layers 3") && e.getMessage().contains("a divisor of 8"),
                e.getMessage());
        var f = assertThrows(IllegalArgumentException.class, () -> config("finetuning_type: full\nuse_llama_pro: true\n"));
        assertTrue(f.getMessage().contains("use_llama_pro is only valid for Freeze or LoRA training"), f.getMessage());
        f = assertThrows(IllegalArgumentException.class, () -> config("finetuning_type: freeze\nuse_llama_pro: true\n"
                + "freeze_trainable_layers: -2\n"));
        var oft = assertThrows(IllegalArgumentException.class, () -> config("finetuning_type: oft\nuse_llama_pro: true\n"));
        assertTrue(oft.getMessage().contains("use_llama_pro with finetuning_type: oft is not implemented"), oft.getMessage());
        assertTrue(f.getMessage().contains("use_llama_pro: true needs freeze_trainable_layers > 0")
                && f.getMessage().contains("got -2"), f.getMessage());
    }
}
