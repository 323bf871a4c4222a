package dev.sparksft.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

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
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** sft llama-pro: LLaMA-Factory's block expansion (scripts/llama_pro.py) on an 8-layer model. */
class LlamaProCommandTest {
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

    /**
     * sft llama-pro (LLaMA-Factory's scripts/llama_pro.py) on the 8-layer model with 2 new layers:
     * 10 layers, the copies at 4 and 9 with o_proj and down_proj zero, the same logits as the
     * original (the new layers add nothing to the residual stream), and use_llama_pro with
     * freeze_trainable_layers 2 trains exactly the new layers.
     */
    @Test
    void blockExpansionInsertsIdentityLayersThatLlamaProTrains(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("pro");
        assertEquals(0, SftMain.exitCode(new String[] {"llama-pro", "--model", model.toString(), "--out",
                out.toString(), "--num-expand", "2"}, System.err));
        ModelConfig expanded = ModelConfig.load(out);
        assertEquals(10, expanded.numLayers());
        var w = dev.sparksft.model.ModelWeights.load(out, expanded).tensors();
        var src = dev.sparksft.model.ModelWeights.load(model, cfg).tensors();
        // new index -> source layer: 0-3 <- 0-3, 4 <- 3 (expanded), 5-8 <- 4-7, 9 <- 7 (expanded)
        int[] from = {0, 1, 2, 3, 3, 4, 5, 6, 7, 7};
        for (int i = 0; i < 10; i++) {
            for (String leaf : new ModelLayout(cfg).layerLinears()) {
                var got = w.get(ModelLayout.linear(i, leaf) + ".weight");
                var want = src.get(ModelLayout.linear(from[i], leaf) + ".weight");
                boolean zero = (i == 4 || i == 9) && (leaf.equals("o_proj") || leaf.equals("down_proj"));
                double diff = (zero ? got : got.sub(want)).abs().max().item_double();
                assertEquals(0, diff, "layer " + i + " " + leaf);
            }
        }
        CausalLm before = CausalLm.load(model, 0);
        CausalLm after = CausalLm.load(out, 0);
        org.bytedeco.pytorch.Tensor ids = org.bytedeco.pytorch.Tensor.create(new long[] {1, 5, 9, 2, 7, 3}, 1, 6);
        org.bytedeco.pytorch.Tensor mask = torch.ones(1, 6).to(torch.ScalarType.Long);
        org.bytedeco.pytorch.Tensor pos = org.bytedeco.pytorch.Tensor.create(new long[] {0, 1, 2, 3, 4, 5}, 1, 6);
        double gap = after.forward(ids, mask, pos).sub(before.forward(ids, mask, pos)).abs().max().item_double();
        assertTrue(gap < 1e-5, "the expanded model must compute the original's logits, off by " + gap);
        Set<Integer> trained = new TreeSet<>();
        Path f = Files.createTempFile(dir, "pro", ".yaml");
        Files.writeString(f, "model_name_or_path: " + out + "\ntemplate: chatml\ndataset: d\nfinetuning_type: freeze\n"
                + "use_llama_pro: true\nfreeze_trainable_layers: 2\n");
        for (String n : dev.sparksft.train.TrainableParameters.baseWeights(new ModelLayout(expanded).expectedShapes().keySet(), expanded,
                SftConfig.load(f, List.of()).finetuning())) {
            trained.add(ModelLayout.layerIndex(n));
        }
        assertEquals(Set.of(4, 9), trained, "use_llama_pro trains the inserted layers");
        var err = new java.io.ByteArrayOutputStream();
        assertEquals(2, SftMain.exitCode(new String[] {"llama-pro", "--model", model.toString(), "--out",
                tmp.resolve("bad").toString(), "--num-expand", "3"}, new java.io.PrintStream(err)));
        assertTrue(err.toString().contains("--num-expand 3 must divide the model's num_hidden_layers 8"), err.toString());
    }

    @Test
    void aGemmaModelIsRefusedByModelType(@TempDir Path tmp) throws Exception {
        Path gemma = tmp.resolve("gemma2");
        TinyModel.write(new TinyModel.Options("gemma2", gemma, 0, 16, 2, 2, 1, 32, null, 0, 0));
        java.io.ByteArrayOutputStream err = new java.io.ByteArrayOutputStream();
        assertEquals(2, SftMain.exitCode(new String[] {"llama-pro", "--model", gemma.toString(), "--out",
                tmp.resolve("pro").toString(), "--num-expand", "1"}, new java.io.PrintStream(err)));
        assertTrue(err.toString().contains("llama-pro: model_type gemma2 is not supported"), err.toString());
    }

    @Test
    void aMixtureOfExpertsModelIsRefusedByModelType(@TempDir Path tmp) throws Exception {
        Path moe = tmp.resolve("mixtral");
        TinyModel.write(new TinyModel.Options("mixtral", moe, 0, 16, 2, 2, 1, 32, null, 0, 0));
        java.io.ByteArrayOutputStream err = new java.io.ByteArrayOutputStream();
        assertEquals(2, SftMain.exitCode(new String[] {"llama-pro", "--model", moe.toString(), "--out",
                tmp.resolve("pro").toString(), "--num-expand", "1"}, new java.io.PrintStream(err)));
        assertTrue(err.toString().contains("llama-pro: model_type mixtral (a mixture of experts) is not supported"),
                err.toString());
    }

}
