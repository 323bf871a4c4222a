package dev.sparksft.cli;

import static dev.sparksft.train.ModelComparison.floats;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparksft.config.SftConfig;
import dev.sparksft.model.Adapter;
import dev.sparksft.model.CausalLm;
import dev.sparksft.model.ModelWeights;
import dev.sparksft.model.OftAdapter;
import dev.sparksft.train.Models;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * OFT end to end on FineTuningMethodsTest's tiny model and sorting task: the loss falls, the
 * adapter is saved in PEFT's layout (the base never written), a checkpoint resumes exactly,
 * predictions use the adapter, export merges it, and an adapter of the other kind is refused.
 */
class OftRunTest {
    @TempDir
    static Path shared;

    @BeforeAll
    static void tinyModelAndData() throws Exception {
        FineTuningMethodsTest.shared = shared;
        FineTuningMethodsTest.tinyModelAndData();
    }

    static SftConfig config(Path dir, String extra, String... overrides) throws Exception {
        return FineTuningMethodsTest.config(dir, extra, overrides);
    }

    @Test
    void oftLearnsTheQuickstartTask(@TempDir Path dir) throws Exception {
        var result = TrainCommand.run(config(dir, "finetuning_type: oft\noft_block_size: 16\nlearning_rate: 1.0e-2\n"
                + "max_steps: 60\n"));
        List<Double> l = dev.sparksft.TrainerLogs.losses(dir.resolve("out"));
        double first = (l.get(0) + l.get(1)) / 2;
        double last = (l.get(l.size() - 1) + l.get(l.size() - 2)) / 2;
        System.out.printf("method oft loss %.3f -> %.3f in %d steps%n", first, last, result.globalStep());
        assertEquals(60, result.globalStep());
        // like LoRA, OFT keeps the embeddings and the head frozen
        assertTrue(last < 0.85 * first, "oft: loss must fall by 15% in 60 steps: " + l);
    }

    @Test
    void oftSavesAPeftAdapterResumesExactlyPredictsAndExports(@TempDir Path a, @TempDir Path b) throws Exception {
        Path model = FineTuningMethodsTest.model;
        String oft = "finetuning_type: oft\noft_block_size: 16\nlearning_rate: 1.0e-2\nmax_steps: 6\n"
                + "save_strategy: steps\nsave_steps: 3\n";
        byte[] baseBefore = Files.readAllBytes(model.resolve(ModelWeights.SINGLE_FILE));
        TrainCommand.run(config(a, oft));
        Path out = a.resolve("out");
        assertTrue(Files.isRegularFile(out.resolve(Adapter.WEIGHTS_FILE)));
        assertTrue(Files.readString(out.resolve(Adapter.CONFIG_FILE)).contains("\"peft_type\" : \"OFT\""));
        assertFalse(Files.exists(out.resolve(ModelWeights.SINGLE_FILE)), "OFT saves the adapter, not the model");
        assertTrue(Files.isRegularFile(out.resolve("checkpoint-3").resolve(Adapter.WEIGHTS_FILE)));
        assertTrue(java.util.Arrays.equals(baseBefore, Files.readAllBytes(model.resolve(ModelWeights.SINGLE_FILE))),
                "the base model is never written");
        Map<String, Tensor> x = FineTuningMethodsTest.adapter(out);
        assertTrue(x.keySet().stream().allMatch(k -> k.startsWith("base_model.model.model.layers.")
                && k.endsWith(".oft_R.weight")), x.keySet().toString());
        assertEquals(14, x.size(), "7 linears x 2 layers");

        // resume from checkpoint-3 in another output_dir: the same adapter at step 6
        TrainCommand.run(config(b, oft, "resume_from_checkpoint=" + out.resolve("checkpoint-3")));
        Map<String, Tensor> y = FineTuningMethodsTest.adapter(b.resolve("out"));
        assertEquals(x.keySet(), y.keySet());
        double diff = 0;
        double moved = 0;
        for (String k : x.keySet()) {
            float[] p = floats(x.get(k));
            float[] q = floats(y.get(k));
            for (int i = 0; i < p.length; i++) {
                diff = Math.max(diff, Math.abs(p[i] - q[i]));
                moved = Math.max(moved, Math.abs(p[i]));
            }
        }
        assertTrue(moved > 1e-3, "training must move oft_R from zero, moved " + moved);
        assertTrue(diff < 1e-6, "resumed adapter differs by " + diff);

        // predictions with adapter_name_or_path, and the merged export computing the same logits
        Path predict = a.resolve("predict");
        Files.createDirectories(predict);
        TrainCommand.run(config(predict, "finetuning_type: oft\ndo_train: false\ndo_predict: true\n"
                + "predict_with_generate: true\neval_dataset: eval.jsonl\nmax_new_tokens: 8\ndo_sample: false\n"
                + "adapter_name_or_path: " + out + "\n"));
        assertEquals(20, Files.readAllLines(predict.resolve("out/generated_predictions.jsonl")).size());
        Path exportDir = a.resolve("merged");
        Path exported = ExportCommand.run(config(a, "finetuning_type: oft\nadapter_name_or_path: " + out
                + "\nexport_dir: " + exportDir + "\n"));
        CausalLm merged = CausalLm.load(exported, 0);
        CausalLm withAdapter = Models.forInference(model, out, null, 0, new Device(torch.DeviceType.CPU), 42);
        assertTrue(withAdapter.adapter() instanceof OftAdapter);
        Tensor ids = Tensor.create(new long[] {1, 5, 9, 2, 7, 3}, 1, 6);
        Tensor mask = torch.ones(1, 6).to(torch.ScalarType.Long);
        Tensor pos = Tensor.create(new long[] {0, 1, 2, 3, 4, 5}, 1, 6);
        double gap = merged.forward(ids, mask, pos).sub(withAdapter.forward(ids, mask, pos)).abs().max().item_double();
        assertTrue(gap < 1e-5, "merged model differs from base + adapter by " + gap);

        // an OFT adapter under finetuning_type: lora, and a LoRA one under oft, are named as such
        var e = assertThrows(IllegalArgumentException.class, () -> TrainCommand.run(config(b,
                "finetuning_type: lora\nadapter_name_or_path: " + out + "\nmax_steps: 1\noverwrite_output_dir: true\n")));
        assertTrue(e.getMessage().contains("peft_type is 'OFT'"), e.getMessage());
        Path lora = a.resolve("lora");
        Files.createDirectories(lora);
        TrainCommand.run(config(lora, "finetuning_type: lora\nlora_rank: 4\nmax_steps: 1\n"));
        e = assertThrows(IllegalArgumentException.class, () -> TrainCommand.run(config(b,
                "finetuning_type: oft\nadapter_name_or_path: " + lora.resolve("out") + "\nmax_steps: 1\n"
                        + "overwrite_output_dir: true\n")));
        assertTrue(e.getMessage().contains("holds a LoRA adapter but finetuning_type is oft")
                && e.getMessage().contains("set finetuning_type: lora"), e.getMessage());
    }
}
