package dev.sparksft.cli;

import dev.sparksft.TrainerLogs;
import dev.sparksft.model.TinyModel;
import static dev.sparksft.train.ModelComparison.floats;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sparksft.config.SftConfig;
import dev.sparksft.data.SyntheticTasks;
import dev.sparksft.model.CausalLm;
import dev.sparksft.model.LoraAdapter;
import dev.sparksft.model.ModelConfig;
import dev.sparksft.model.ModelWeights;
import dev.sparksft.runtime.Torch;
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
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Every fine-tuning method of the seed trains the quickstart task (sorting letters) on a random
 * tiny model with falling loss, and LoRA's files work end to end: checkpoints resume exactly,
 * predictions use the adapter, export merges it.
 */
class FineTuningMethodsTest {
    static final ObjectMapper JSON = new ObjectMapper();
    @TempDir
    static Path shared;
    static Path model;
    static Path data;

    @BeforeAll
    static void tinyModelAndData() throws Exception {
        Torch.load(1);
        model = shared.resolve("model");
        TinyModel.write(new TinyModel.Options("llama", model, 0, 64, 2, 4, 4, 256, null, 0, 0));
        // LoRA and BAdam never train the LM head. A random head (std 0.02 over 64 RMS-normed features) caps
        // every logit near +-1.3, so methods that keep it frozen cannot sharpen the output at all (measured:
        // LoRA 5.81 -> 5.59); a head 8x larger has the logit range of a pretrained one
        ModelConfig cfg = ModelConfig.load(model);
        ModelWeights weights = ModelWeights.load(model, cfg);
        weights.get("lm_head.weight").mul_(new org.bytedeco.pytorch.Scalar(8.0));
        weights.save(model, dev.sparksft.model.Dtype.F32);
        data = shared.resolve("data");
        SyntheticTasks.write(SyntheticTasks.Task.SORT, data.resolve("train.jsonl"), 400, 5, 1);
        SyntheticTasks.write(SyntheticTasks.Task.SORT, data.resolve("eval.jsonl"), 20, 5, 2);
    }

    static SftConfig config(Path dir, String extra, String... overrides) throws Exception {
        Path f = dir.resolve("run.yaml");
        Files.writeString(f, dev.sparksft.TestYaml.withExtra("model_name_or_path: " + model
                + "\ntemplate: qwen3_nothink\ndataset: train.jsonl\n"
                + "dataset_dir: " + data + "\ncutoff_len: 64\nstage: sft\ndo_train: true\noutput_dir: " + dir.resolve("out")
                + "\nper_device_train_batch_size: 16\nlr_scheduler_type: constant\nlogging_steps: 5\nsave_strategy: \"no\"\n"
                + "num_threads: 1\n", extra));
        return SftConfig.load(f, List.of(overrides));
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', value = {
            "full         | finetuning_type: full;learning_rate: 5.0e-3",
            "lora         | finetuning_type: lora;lora_rank: 16;learning_rate: 1.0e-2",
            "lora+ additional_target | finetuning_type: lora;lora_rank: 16;additional_target: lm_head;loraplus_lr_ratio: 4;learning_rate: 5.0e-3",
            "lora rslora dropout | finetuning_type: lora;lora_rank: 16;use_rslora: true;lora_dropout: 0.05;learning_rate: 1.0e-2",
            "galore       | finetuning_type: full;use_galore: true;galore_rank: 16;galore_update_interval: 20;galore_scale: 1;learning_rate: 5.0e-3",
            "apollo       | finetuning_type: full;use_apollo: true;apollo_rank: 16;apollo_update_interval: 20;apollo_scale: 1;learning_rate: 5.0e-3",
            "badam        | finetuning_type: full;use_badam: true;badam_switch_interval: 10;learning_rate: 5.0e-3",
            "badam ratio  | finetuning_type: full;use_badam: true;badam_mode: ratio;badam_update_ratio: 0.5;learning_rate: 1.0e-2",
            "muon         | finetuning_type: full;use_muon: true;learning_rate: 5.0e-3",
            "adam-mini    | finetuning_type: full;use_adam_mini: true;learning_rate: 5.0e-3",
            "neat packing | finetuning_type: full;neat_packing: true;per_device_train_batch_size: 4;learning_rate: 5.0e-3",
            "bf16         | finetuning_type: full;bf16: true;learning_rate: 5.0e-3",
            "pure bf16    | finetuning_type: full;pure_bf16: true;learning_rate: 5.0e-3",
            "lora over pure bf16 | finetuning_type: lora;lora_rank: 16;pure_bf16: true;learning_rate: 1.0e-2"})
    void everyMethodLearnsTheQuickstartTask(String method, String yaml, @TempDir Path dir) throws Exception {
        var result = dev.sparksft.cli.TrainCommand.run(config(dir, yaml.replace(";", "\n") + "\nmax_steps: 60\n"));
        List<Double> l = TrainerLogs.losses(dir.resolve("out"));
        double first = (l.get(0) + l.get(1)) / 2;
        double last = (l.get(l.size() - 1) + l.get(l.size() - 2)) / 2;
        System.out.printf("method %-20s loss %.3f -> %.3f in %d steps%n", method, first, last, result.globalStep());
        assertEquals(60, result.globalStep());
        // full fine-tuning falls by about half here, LoRA and BAdam (frozen embeddings and head) by a fifth
        assertTrue(last < 0.85 * first, method + ": loss must fall by 15% in 60 steps: " + l);
    }

    /**
     * ASFT through the train command: 60 steps log 12 finite losses, and the held-out cross entropy
     * (eval_loss, which is plain CE for every loss) falls by 15% from the untrained model's. The
     * logged ASFT loss itself need not fall: DFT's ce p grows while p rises towards 1/e.
     */
    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', value = {
            "full      | finetuning_type: full;asft_alpha: 0.1;learning_rate: 5.0e-3",
            "lora bf16 | finetuning_type: lora;lora_rank: 16;asft_alpha: 0.05;bf16: true;learning_rate: 1.0e-2"})
    void asftTrainsAndLogs(String method, String yaml, @TempDir Path before, @TempDir Path dir) throws Exception {
        String eval = "eval_dataset: eval.jsonl\ndo_eval: true\nper_device_eval_batch_size: 20\n";
        dev.sparksft.cli.TrainCommand.run(config(before, eval + "do_train: false\ndataset: null\n"
                + yaml.replace(";", "\n") + "\n"));
        double untrained = JSON.readTree(before.resolve("out/eval_results.json").toFile()).get("eval_loss").asDouble();
        var result = dev.sparksft.cli.TrainCommand.run(config(dir, eval + "use_asft_loss: true\n" + yaml.replace(";", "\n")
                + "\nmax_steps: 60\n"));
        List<Double> l = TrainerLogs.losses(dir.resolve("out"));
        double trained = JSON.readTree(dir.resolve("out/eval_results.json").toFile()).get("eval_loss").asDouble();
        System.out.printf("asft %-10s logged loss %.3f -> %.3f, eval cross entropy %.3f -> %.3f in %d steps%n", method,
                l.get(0), l.get(l.size() - 1), untrained, trained, result.globalStep());
        assertEquals(60, result.globalStep());
        assertEquals(12, l.size(), "logging_steps 5: " + l);
        assertTrue(l.stream().allMatch(Double::isFinite), l.toString());
        assertTrue(trained < 0.85 * untrained, method + ": eval cross entropy must fall by 15%: " + untrained + " -> "
                + trained);
    }

    /** A checkpoint holds each optimizer's whole state (projections, blocks, limiter norms): resuming is exact. */
    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', value = {
            "galore    | use_galore: true;galore_rank: 8;galore_update_interval: 2",
            "apollo    | use_apollo: true;apollo_rank: 8;apollo_update_interval: 2",
            "badam     | use_badam: true;badam_switch_interval: 2;badam_switch_mode: random",
            "badam ratio | use_badam: true;badam_mode: ratio;badam_update_ratio: 0.3;badam_mask_mode: scatter",
            "muon      | use_muon: true",
            "adam-mini | use_adam_mini: true"})
    void everyOptimizerResumesExactly(String method, String yaml, @TempDir Path a, @TempDir Path b) throws Exception {
        String common = "finetuning_type: full\nlearning_rate: 5.0e-3\nmax_steps: 6\nsave_strategy: steps\nsave_steps: 3\n"
                + yaml.replace(";", "\n") + "\n";
        dev.sparksft.cli.TrainCommand.run(config(a, common));
        dev.sparksft.cli.TrainCommand.run(config(b, common, "resume_from_checkpoint=" + a.resolve("out/checkpoint-3")));
        double rel = dev.sparksft.train.ModelComparison.relativeDifference(
                dev.sparksft.train.ModelComparison.weights(a.resolve("out")),
                dev.sparksft.train.ModelComparison.weights(b.resolve("out")),
                dev.sparksft.train.ModelComparison.weights(model), 1e-4);
        assertTrue(rel < 1e-6, method + ": the resumed run differs by " + rel + " of the update");
    }

    @Test
    void anAdapterNeedsLoraAndTheAdapterMustMatchTheModel(@TempDir Path dir) throws Exception {
        var e = assertThrows(IllegalArgumentException.class, () -> dev.sparksft.cli.TrainCommand.run(config(dir,
                "finetuning_type: full\nadapter_name_or_path: " + model + "\nmax_steps: 1\n")));
        assertTrue(e.getMessage().contains("adapter_name_or_path") && e.getMessage().contains("finetuning_type"),
                e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> dev.sparksft.cli.TrainCommand.run(config(dir,
                "finetuning_type: lora\nadapter_name_or_path: " + model + "\nmax_steps: 1\n")));
        assertTrue(e.getMessage().contains("adapter_config.json"), e.getMessage());
    }

    static Map<String, Tensor> adapter(Path dir) throws Exception {
        var header = dev.sparksft.model.Safetensors.readHeader(dir.resolve(LoraAdapter.WEIGHTS_FILE));
        Map<String, Tensor> out = new java.util.TreeMap<>();
        for (var e : header.entries().values()) {
            out.put(e.name(), dev.sparksft.model.Safetensors.readTensor(header, e));
        }
        return out;
    }

    @Test
    void loraSavesAPeftAdapterResumesExactlyPredictsAndExports(@TempDir Path a, @TempDir Path b) throws Exception {
        String lora = "finetuning_type: lora\nlora_rank: 4\nlearning_rate: 1.0e-2\nmax_steps: 6\nsave_strategy: steps\n"
                + "save_steps: 3\n";
        byte[] baseBefore = Files.readAllBytes(model.resolve(ModelWeights.SINGLE_FILE));
        dev.sparksft.cli.TrainCommand.run(config(a, lora));
        Path out = a.resolve("out");
        assertTrue(Files.isRegularFile(out.resolve(LoraAdapter.WEIGHTS_FILE)));
        assertTrue(Files.isRegularFile(out.resolve(LoraAdapter.CONFIG_FILE)));
        assertFalse(Files.exists(out.resolve(ModelWeights.SINGLE_FILE)), "LoRA saves the adapter, not the model");
        assertTrue(Files.isRegularFile(out.resolve("checkpoint-3").resolve(LoraAdapter.WEIGHTS_FILE)));
        assertTrue(java.util.Arrays.equals(baseBefore, Files.readAllBytes(model.resolve(ModelWeights.SINGLE_FILE))),
                "the base model is never written");

        // resume from checkpoint-3 in another output_dir: the same adapter at step 6
        dev.sparksft.cli.TrainCommand.run(config(b, lora, "resume_from_checkpoint=" + out.resolve("checkpoint-3")));
        Map<String, Tensor> x = adapter(out);
        Map<String, Tensor> y = adapter(b.resolve("out"));
        assertEquals(x.keySet(), y.keySet());
        double diff = 0;
        for (String k : x.keySet()) {
            float[] p = floats(x.get(k));
            float[] q = floats(y.get(k));
            for (int i = 0; i < p.length; i++) {
                diff = Math.max(diff, Math.abs(p[i] - q[i]));
            }
        }
        assertTrue(diff < 1e-6, "resumed adapter differs by " + diff);

        // predictions with adapter_name_or_path, and the merged export computing the same logits
        Path predict = a.resolve("predict");
        Files.createDirectories(predict);
        dev.sparksft.cli.TrainCommand.run(config(predict, "finetuning_type: lora\ndo_train: false\ndo_predict: true\n"
                + "predict_with_generate: true\neval_dataset: eval.jsonl\nmax_new_tokens: 8\ndo_sample: false\n"
                + "adapter_name_or_path: " + out + "\n"));
        assertEquals(20, Files.readAllLines(predict.resolve("out/generated_predictions.jsonl")).size());
        Path exportDir = a.resolve("merged");
        Path exported = ExportCommand.run(config(a, "finetuning_type: lora\nadapter_name_or_path: " + out + "\nexport_dir: "
                + exportDir + "\n"));
        CausalLm merged = CausalLm.load(exported, 0);
        CausalLm withAdapter = Models.forInference(model, out, null, 0, new Device(torch.DeviceType.CPU), 42);
        Tensor ids = Tensor.create(new long[] {1, 5, 9, 2, 7, 3}, 1, 6);
        Tensor mask = torch.ones(1, 6).to(torch.ScalarType.Long);
        Tensor pos = Tensor.create(new long[] {0, 1, 2, 3, 4, 5}, 1, 6);
        double gap = merged.forward(ids, mask, pos).sub(withAdapter.forward(ids, mask, pos)).abs().max().item_double();
        assertTrue(gap < 1e-5, "merged model differs from base + adapter by " + gap);
        assertTrue(Files.isRegularFile(exported.resolve("tokenizer.json")));
        ModelConfig.load(exported);
        var e = assertThrows(IllegalArgumentException.class, () -> ExportCommand.run(config(a,
                "finetuning_type: lora\nadapter_name_or_path: " + out + "\nexport_dir: " + exportDir + "\n")));
        assertTrue(e.getMessage().contains("export_dir"), e.getMessage());
    }

    @Test
    void contradictoryMethodsAreRefusedWithLlamaFactorysRules(@TempDir Path dir) {
        var e = assertThrows(IllegalArgumentException.class, () -> config(dir, "finetuning_type: lora\nuse_galore: true\n"));
        assertTrue(e.getMessage().contains("Cannot use LoRA with GaLore, APOLLO or BAdam together"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> config(dir,
                "finetuning_type: full\nuse_galore: true\nuse_badam: true\n"));
        assertTrue(e.getMessage().contains("Cannot use GaLore, APOLLO or BAdam together"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> config(dir, "finetuning_type: full\nloraplus_lr_ratio: 16\n"));
        assertTrue(e.getMessage().contains("loraplus_lr_ratio is only valid for LoRA"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> config(dir, "finetuning_type: full\nuse_muon: true\n"
                + "use_adam_mini: true\n"));
        assertTrue(e.getMessage().contains("use_adam_mini and use_muon"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> config(dir, "finetuning_type: full\nuse_apollo: true\n"
                + "apollo_scale_type: row\n"));
        assertTrue(e.getMessage().contains("apollo_scale_type must be one of channel, tensor, got 'row'"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> dev.sparksft.cli.TrainCommand.run(config(dir,
                "finetuning_type: full\nuse_galore: true\ngalore_target: mlp_gate\nmax_steps: 1\n")));
        assertTrue(e.getMessage().contains("galore_target") && e.getMessage().contains("gate_proj"), e.getMessage());
    }

    @Test
    void fp8OnACpuIsAClearError(@TempDir Path dir) {
        var e = assertThrows(IllegalArgumentException.class, () -> dev.sparksft.cli.TrainCommand.run(config(dir,
                "finetuning_type: full\nfp8: true\nmax_steps: 1\n")));
        assertTrue(e.getMessage().contains("fp8") && e.getMessage().contains("cpu") && e.getMessage().contains("8.9"),
                e.getMessage());
    }
}
