package dev.sparksft.run;

import dev.sparksft.UserError;
import dev.sparksft.config.SftConfig;
import dev.sparksft.config.TrainingArguments;
import dev.sparksft.model.ModelConfig;
import dev.sparksft.train.BatchPlan;
import dev.sparksft.train.Checkpoints;
import dev.sparksft.train.Outputs;
import dev.sparksft.train.TrainingSetup;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

/**
 * What a training run writes to output_dir, in bytes, known once the number of training examples
 * is (the number of steps, so of saves, follows from it) and before the model is loaded:
 * <pre>
 *   model      = the source's *.safetensors (full and freeze fine-tuning save every weight in the
 *                dtype it was read in), or 4 x trainable elements (LoRA: a float32 adapter)
 *                + the tokenizer and generation files copied next to it
 *                + with pissa_convert, four adapters more (pissa_init, pissa_backup, pissa_converted of rank 2r)
 *   checkpoint = that model without the PiSSA folders + the whole optimizer state
 *                ({@link MemoryEstimate#checkpointOptimizer})
 *   total      = model + checkpoints kept at once x checkpoint
 * </pre>
 * where the checkpoints kept are the saves from the resumed step on, at most save_total_limit.
 * The logs, results and trainer state are small and left out, as is the moment a new checkpoint
 * exists before rotation deletes the oldest: the total is what the run needs at least.
 */
public record DiskEstimate(long model, long checkpoint, long numCheckpoints) {
    /**
     * @param numExamples the training set (packed sequences with packing), for the number of steps
     * @param fromStep    the step the run resumes at (0 for a new run)
     */
    public static DiskEstimate of(SftConfig config, ModelConfig cfg, Path modelDir, int numExamples, long fromStep)
            throws IOException {
        TrainingArguments args = config.training();
        // the whole state does not depend on the ZeRO stage (the driver need not read the deepspeed file)
        MemoryEstimate memory = MemoryEstimate.of(config, cfg, 0);
        long weights = config.finetuning().adapter() ? 4 * memory.numTrainable() : safetensorsBytes(modelDir);
        // pissa_convert: pissa_init/ and pissa_backup/ (an adapter each) and pissa_converted/ (rank 2r: two)
        long pissa = config.finetuning().lora() && config.finetuning().pissaConvert() ? 4 * weights : 0;
        long saved = weights + size(Outputs.sideFiles(modelDir));   // a checkpoint's model
        long model = saved + pissa;
        BatchPlan plan = TrainingSetup.plan(numExamples, args, config.finetuning(), config.distributed().worldSize());
        long saves = Checkpoints.numSaves(args, fromStep, TrainingSetup.totalSteps(args, plan), plan.stepsPerEpoch());
        long kept = args.saveTotalLimit() == null ? saves : Math.min(saves, args.saveTotalLimit());
        long optimizer = config.training().saveOnlyModel() ? 0 : memory.checkpointOptimizer();
        return new DiskEstimate(model, saved + optimizer, kept);
    }

    public long total() {
        return model + numCheckpoints * checkpoint;
    }

    /** Refuses a run that needs more than {@code freeBytes} in output_dir, naming both and what would shrink it. */
    public void requireFits(String outputDir, long freeBytes) {
        if (total() <= freeBytes) {
            return;
        }
        throw new UserError(String.format("output_dir %s has %s free, but this run writes at least %s there (the "
                        + "final model, %s, and %d checkpoint(s) of %s each: the model and the optimizer state); free "
                        + "space, keep fewer checkpoints (save_total_limit, save_steps, save_strategy), or choose "
                        + "another output_dir", outputDir, gb(freeBytes), gb(total()), gb(model), numCheckpoints,
                gb(checkpoint)));
    }

    private static String gb(long bytes) {
        return bytes >= 1L << 30 ? String.format("%.1f GB", bytes / 1073741824.0) : String.format("%.1f MB", bytes / 1048576.0);
    }

    private static long safetensorsBytes(Path modelDir) throws IOException {
        try (Stream<Path> s = Files.list(modelDir)) {
            return size(s.filter(p -> p.getFileName().toString().endsWith(".safetensors")).toList());
        }
    }

    private static long size(java.util.List<Path> files) throws IOException {
        long n = 0;
        for (Path f : files) {
            n += Files.size(f);
        }
        return n;
    }
}
