package dev.sparksft.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sparksft.TrainerLogs;
import dev.sparksft.cli.TrainCommand;
import dev.sparksft.config.SftConfig;
import dev.sparksft.model.LoraAdapter;
import dev.sparksft.model.Safetensors;
import dev.sparksft.train.ModelComparison;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * LoRA on LLaMA-Factory's mllm_demo with the tiny Qwen2-VL (trainer-core's test resources, from
 * transformers): Spark on 2 ranks, each reading its examples' images itself through the Hadoop
 * client, trains as one process does on the same global batch (losses within 1e-5 relative, the
 * adapter within 1e-4 of its update), saves the processor's preprocessor_config.json, and predicts
 * from prompts with images (each prediction task reading them) the rows one process predicts.
 */
class SparkMultimodalTrainingTest {
    static final List<String> MODEL_FILES = List.of("config.json", "model.safetensors", "generation_config.json",
            "tokenizer.json", "tokenizer_config.json", "preprocessor_config.json");

    @Test
    void twoRanksTrainLoraOnImagesAsOneProcessDoes(@TempDir Path dir) throws Exception {
        Path data = SparkMultimodalDataTest.fixture(dir.resolve("fixture"))[0];
        Path model = Files.createDirectories(dir.resolve("qwen2vl"));
        for (String f : MODEL_FILES) {
            SparkMultimodalDataTest.copy("/qwen2vl_demo/model/" + f, model.resolve(f));
        }
        Path single = Files.createDirectories(dir.resolve("single"));
        TrainCommand.run(SftConfig.fromValues(values(single, data, model, 2)));
        Path run = Files.createDirectories(dir.resolve("w2"));
        ObjectNode twoRanks = values(run, data, model, 1);
        twoRanks.put("world_size", 2);
        TrainingJob.run(SparkTests.spark(), twoRanks, new PrintStream(new ByteArrayOutputStream(), true));
        PredictionJob.run(SparkTests.spark(), twoRanks, run.resolve("out").toString());   // as SparkSftMain follows training

        List<Double> reference = TrainerLogs.losses(single.resolve("out"));
        List<Double> got = TrainerLogs.losses(run.resolve("out"));
        assertEquals(4, reference.size(), "6 rows, global batch 4, 2 epochs: 4 steps");
        assertEquals(reference.size(), got.size());
        for (int i = 0; i < got.size(); i++) {
            assertEquals(reference.get(i), got.get(i), 1e-5 * reference.get(i), "step " + (i + 1));
        }
        Map<String, org.bytedeco.pytorch.Tensor> a = adapter(single.resolve("out"));
        Map<String, org.bytedeco.pytorch.Tensor> b = adapter(run.resolve("out"));
        double diff = 0;
        double size = 0;
        for (String name : a.keySet()) {
            float[] x = ModelComparison.floats(a.get(name));
            float[] y = ModelComparison.floats(b.get(name));
            for (int i = 0; i < x.length; i++) {
                diff = Math.max(diff, Math.abs(x[i] - y[i]));
                size = Math.max(size, name.contains("lora_B") ? Math.abs(x[i]) : 0);   // B starts at zero: its size is the update
            }
        }
        assertTrue(size > 1e-4, "LoRA B did not move: " + size);
        assertTrue(diff <= 1e-4 * size, "adapters differ by " + diff + " (lora_B's update " + size + ")");
        assertTrue(Files.isRegularFile(run.resolve("out/preprocessor_config.json")));
        // prediction: Spark's tasks read their prompts' images themselves and generate what one process does
        List<String> local = Files.readAllLines(single.resolve("out/generated_predictions.jsonl"));
        List<String> spark = Files.readAllLines(run.resolve("out/generated_predictions.jsonl"));
        assertEquals(6, local.size());
        assertEquals(local, spark);
        assertTrue(local.get(0).contains("<image>Who are they?"), local.get(0));
    }

    static ObjectNode values(Path dir, Path data, Path model, int accumulation) {
        ObjectNode v = SparkMultimodalDataTest.values(data.toString(), model,
                "output_dir", dir.resolve("out").toString(), "finetuning_type", "lora", "lora_target", "all",
                "stage", "sft", "optim", "sgd", "learning_rate", "0.5", "lr_scheduler_type", "constant",
                "max_grad_norm", "0");
        v.put("do_train", true);
        v.put("lora_rank", 4);
        v.put("per_device_train_batch_size", 2);
        v.put("gradient_accumulation_steps", accumulation);
        v.put("num_train_epochs", 2);
        v.put("logging_steps", 1);
        v.put("save_steps", 1000);
        v.put("num_threads", 1);
        v.put("intra_op_threads", 1);
        v.put("ddp_timeout", 60);
        v.put("seed", 11);
        v.put("do_predict", true);
        v.put("predict_with_generate", true);
        v.put("eval_dataset", "mllm_demo");
        v.put("max_new_tokens", 4);
        return v;
    }

    static Map<String, org.bytedeco.pytorch.Tensor> adapter(Path out) throws Exception {
        Safetensors.Header h = Safetensors.readHeader(out.resolve(LoraAdapter.WEIGHTS_FILE));
        Map<String, org.bytedeco.pytorch.Tensor> tensors = new java.util.LinkedHashMap<>();
        for (Safetensors.Entry e : h.entries().values()) {
            tensors.put(e.name(), Safetensors.readTensor(h, e).to(org.bytedeco.pytorch.global.torch.ScalarType.Float));
        }
        return tensors;
    }
}
