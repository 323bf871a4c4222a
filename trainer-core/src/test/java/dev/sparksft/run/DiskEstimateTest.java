package dev.sparksft.run;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparksft.UserError;
import dev.sparksft.config.SftConfig;
import dev.sparksft.model.ModelConfig;
import dev.sparksft.model.Safetensors;
import dev.sparksft.model.TinyModel;
import dev.sparksft.runtime.Torch;
import dev.sparksft.train.Outputs;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What a run writes to output_dir, against closed forms on the tiny Llama of {@link MemoryEstimateTest}
 * (P parameters): full fine-tuning saves the source's safetensors and each checkpoint adds AdamW's
 * 8P bytes; LoRA saves a float32 adapter; save_total_limit and a resumed step bound the checkpoints.
 */
class DiskEstimateTest {
    @TempDir
    static Path dir;
    static Path m;
    static ModelConfig cfg;

    @BeforeAll
    static void model() throws Exception {
        Torch.load(1);
        m = dir.resolve("m");
        TinyModel.write(new TinyModel.Options("llama", m, 0, 32, 2, 4, 2, 64, null, 0, 0));
        cfg = ModelConfig.load(m);
    }

    static DiskEstimate estimate(String extra, int numExamples, long fromStep) throws Exception {
        Path yaml = Files.writeString(dir.resolve("disk-" + Math.abs(extra.hashCode()) + ".yaml"),
                "model_name_or_path: " + m + "\ntemplate: chatml\ndataset: x\noutput_dir: o\ndo_train: true\n"
                        + "per_device_train_batch_size: 2\n" + extra.replace(";", "\n") + "\n");
        return DiskEstimate.of(SftConfig.load(yaml, List.of()), cfg, m, numExamples, fromStep);
    }

    /** P: the elements of every tensor the model file holds. */
    static long params() throws Exception {
        return Safetensors.readHeader(m.resolve("model.safetensors")).entries().values().stream()
                .mapToLong(Safetensors.Entry::numElements).sum();
    }

    static long sideFiles() throws Exception {
        long n = 0;
        for (Path f : Outputs.sideFiles(m)) {
            n += Files.size(f);
        }
        return n;
    }

    @Test
    void fullFineTuningWritesTheModelAndPerCheckpointItsAdamState() throws Exception {
        long p = params();
        long files = Files.size(m.resolve("model.safetensors")) + sideFiles();
        // 10 examples, global batch 2: 5 steps an epoch, 3 epochs = 15 steps; saves at 4, 8, 12 and 15
        DiskEstimate e = estimate("finetuning_type: full;num_train_epochs: 3;save_steps: 4", 10, 0);
        assertEquals(files, e.model());
        assertEquals(files + 8 * p, e.checkpoint());
        assertEquals(4, e.numCheckpoints());
        assertEquals(files + 4 * (files + 8 * p), e.total());
        assertEquals(2, estimate("finetuning_type: full;num_train_epochs: 3;save_steps: 4", 10, 8).numCheckpoints(),
                "resumed at step 8: 12 and 15");
        assertEquals(1, estimate("finetuning_type: full;num_train_epochs: 3;save_steps: 4;save_total_limit: 1", 10, 0)
                .numCheckpoints());
        assertEquals(3, estimate("finetuning_type: full;num_train_epochs: 3;save_strategy: epoch", 10, 0)
                .numCheckpoints());
        assertEquals(0, estimate("finetuning_type: full;max_steps: 7;save_strategy: 'no'", 10, 0).numCheckpoints());
    }

    @Test
    void loraWritesAFloat32Adapter() throws Exception {
        long r = 4;
        long adapter = MemoryEstimateTest.L * r * ((MemoryEstimateTest.H + MemoryEstimateTest.H)
                + 2 * (MemoryEstimateTest.H + MemoryEstimateTest.KV) + (MemoryEstimateTest.H + MemoryEstimateTest.H)
                + 2 * (MemoryEstimateTest.H + MemoryEstimateTest.I) + (MemoryEstimateTest.I + MemoryEstimateTest.H));
        DiskEstimate e = estimate("finetuning_type: lora;lora_rank: 4;bf16: true;max_steps: 3", 10, 0);
        assertEquals(4 * adapter + sideFiles(), e.model());
        assertEquals(4 * adapter + sideFiles() + 8 * adapter, e.checkpoint());
    }

    @Test
    void aRunThatDoesNotFitIsRefusedNamingNeededAndFree() throws Exception {
        DiskEstimate e = estimate("finetuning_type: full;max_steps: 3;save_steps: 1", 10, 0);
        e.requireFits("/out", e.total());   // fits exactly
        UserError refused = assertThrows(UserError.class, () -> e.requireFits("/out", e.total() - 1));
        assertTrue(refused.getMessage().startsWith(String.format("output_dir /out has %.1f MB free, but this run writes "
                + "at least %.1f MB there (the final model, %.1f MB, and 3 checkpoint(s) of %.1f MB each",
                (e.total() - 1) / 1048576.0, e.total() / 1048576.0, e.model() / 1048576.0, e.checkpoint() / 1048576.0)),
                refused.getMessage());
    }
}
