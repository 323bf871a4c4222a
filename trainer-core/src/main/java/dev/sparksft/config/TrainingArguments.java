package dev.sparksft.config;

import com.fasterxml.jackson.annotation.JsonProperty;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * How to train: Hugging Face (Seq2Seq)TrainingArguments keys with their defaults, plus three keys
 * of spark-sft's own: {@code num_threads} (OpenBLAS threads for the fp32 matmuls; default: all
 * cores), {@code intra_op_threads} (libtorch's own parallel kernels; null when unset, which
 * runtime.CpuFeatures resolves: 1 for float32, measured faster on small machines, all of the rank's
 * cores for bf16, whose matmuls run on them) and {@code overlap_gradient_reduction}
 * (default true: with several ranks each gradient bucket is reduced as soon as the last
 * micro-batch's backward has completed it, see dist.Sharding; false reduces all of them after the
 * backward, the same result). {@code deepspeed} is the path of a DeepSpeed JSON
 * ({@link DeepSpeedConfig}), read by every rank when training starts.
 */
public record TrainingArguments(
        @JsonProperty("output_dir") String outputDir,
        @JsonProperty("overwrite_output_dir") Boolean overwriteOutputDir,
        @JsonProperty("do_train") Boolean doTrain,
        @JsonProperty("do_eval") Boolean doEval,
        @JsonProperty("do_predict") Boolean doPredict,
        @JsonProperty("predict_with_generate") Boolean predictWithGenerate,
        @JsonProperty("per_device_train_batch_size") Integer perDeviceTrainBatchSize,
        @JsonProperty("per_device_eval_batch_size") Integer perDeviceEvalBatchSize,
        @JsonProperty("gradient_accumulation_steps") Integer gradientAccumulationSteps,
        @JsonProperty("learning_rate") Double learningRate,
        @JsonProperty("weight_decay") Double weightDecay,
        @JsonProperty("adam_beta1") Double adamBeta1,
        @JsonProperty("adam_beta2") Double adamBeta2,
        @JsonProperty("adam_epsilon") Double adamEpsilon,
        @JsonProperty("max_grad_norm") Double maxGradNorm,
        @JsonProperty("num_train_epochs") Double numTrainEpochs,
        @JsonProperty("max_steps") Integer maxSteps,
        @JsonProperty("lr_scheduler_type") String lrSchedulerType,
        @JsonProperty("lr_scheduler_kwargs") Map<String, Object> lrSchedulerKwargs,
        @JsonProperty("warmup_ratio") Double warmupRatio,
        @JsonProperty("warmup_steps") Integer warmupSteps,
        @JsonProperty("logging_steps") Integer loggingSteps,
        @JsonProperty("save_strategy") String saveStrategy,
        @JsonProperty("save_steps") Integer saveSteps,
        @JsonProperty("save_total_limit") Integer saveTotalLimit,
        @JsonProperty("save_only_model") Boolean saveOnlyModel,
        @JsonProperty("eval_strategy") String evalStrategy,
        @JsonProperty("eval_steps") Integer evalSteps,
        @JsonProperty("seed") Integer seed,
        @JsonProperty("optim") String optim,
        @JsonProperty("resume_from_checkpoint") String resumeFromCheckpoint,
        @JsonProperty("bf16") Boolean bf16,
        @JsonProperty("fp8") Boolean fp8,
        @JsonProperty("fp8_backend") String fp8Backend,
        @JsonProperty("num_threads") Integer numThreads,
        @JsonProperty("intra_op_threads") Integer intraOpThreads,
        @JsonProperty("deepspeed") String deepspeed,
        @JsonProperty("overlap_gradient_reduction") Boolean overlapGradientReduction) {

    public static final Set<String> SCHEDULERS = Set.of("linear", "cosine", "cosine_with_restarts", "polynomial",
            "constant", "constant_with_warmup", "inverse_sqrt", "cosine_with_min_lr", "warmup_stable_decay");
    public static final Set<String> OPTIMIZERS = Set.of("adamw_torch", "sgd");

    public TrainingArguments {
        saveOnlyModel = saveOnlyModel != null && saveOnlyModel;   // true: checkpoints without optimizer state
        overwriteOutputDir = overwriteOutputDir != null && overwriteOutputDir;
        doTrain = doTrain != null && doTrain;
        doEval = doEval != null && doEval;
        doPredict = doPredict != null && doPredict;
        predictWithGenerate = predictWithGenerate != null && predictWithGenerate;
        perDeviceTrainBatchSize = perDeviceTrainBatchSize == null ? 8 : perDeviceTrainBatchSize;
        perDeviceEvalBatchSize = perDeviceEvalBatchSize == null ? 8 : perDeviceEvalBatchSize;
        gradientAccumulationSteps = gradientAccumulationSteps == null ? 1 : gradientAccumulationSteps;
        learningRate = learningRate == null ? 5e-5 : learningRate;
        weightDecay = weightDecay == null ? 0.0 : weightDecay;
        adamBeta1 = adamBeta1 == null ? 0.9 : adamBeta1;
        adamBeta2 = adamBeta2 == null ? 0.999 : adamBeta2;
        adamEpsilon = adamEpsilon == null ? 1e-8 : adamEpsilon;
        maxGradNorm = maxGradNorm == null ? 1.0 : maxGradNorm;
        numTrainEpochs = numTrainEpochs == null ? 3.0 : numTrainEpochs;
        maxSteps = maxSteps == null ? -1 : maxSteps;
        lrSchedulerType = lrSchedulerType == null ? "linear" : lrSchedulerType;
        lrSchedulerKwargs = lrSchedulerKwargs == null ? Map.of() : Map.copyOf(lrSchedulerKwargs);
        warmupRatio = warmupRatio == null ? 0.0 : warmupRatio;
        warmupSteps = warmupSteps == null ? 0 : warmupSteps;
        loggingSteps = loggingSteps == null ? 500 : loggingSteps;
        saveStrategy = saveStrategy == null ? "steps" : strategy(saveStrategy);
        saveSteps = saveSteps == null ? 500 : saveSteps;
        evalStrategy = evalStrategy == null ? "no" : strategy(evalStrategy);
        evalSteps = evalSteps == null ? loggingSteps : evalSteps;
        seed = seed == null ? 42 : seed;
        // Hugging Face's default since torch 2.8, the same update as adamw_torch in one fused kernel
        optim = optim == null || optim.equals("adamw_torch_fused") ? "adamw_torch" : optim;
        bf16 = bf16 != null && bf16;
        fp8 = fp8 != null && fp8;
        fp8Backend = fp8Backend == null ? "auto" : fp8Backend;
        numThreads = numThreads == null ? Runtime.getRuntime().availableProcessors() : numThreads;
        overlapGradientReduction = overlapGradientReduction == null || overlapGradientReduction;

        List<String> p = new ArrayList<>();
        positive(p, "per_device_train_batch_size", perDeviceTrainBatchSize);
        positive(p, "per_device_eval_batch_size", perDeviceEvalBatchSize);
        positive(p, "gradient_accumulation_steps", gradientAccumulationSteps);
        positive(p, "logging_steps", loggingSteps);
        positive(p, "save_steps", saveSteps);
        positive(p, "eval_steps", evalSteps);
        positive(p, "num_threads", numThreads);
        if (intraOpThreads != null) {
            positive(p, "intra_op_threads", intraOpThreads);
        }
        if (!(learningRate > 0)) {
            p.add("learning_rate must be > 0, got " + learningRate);
        }
        if (weightDecay < 0) {
            p.add("weight_decay must be >= 0, got " + weightDecay);
        }
        if (adamBeta1 < 0 || adamBeta1 >= 1 || adamBeta2 < 0 || adamBeta2 >= 1) {
            p.add("adam_beta1 and adam_beta2 must be in [0, 1), got " + adamBeta1 + " and " + adamBeta2);
        }
        if (!(adamEpsilon > 0)) {
            p.add("adam_epsilon must be > 0, got " + adamEpsilon);
        }
        if (maxGradNorm < 0) {
            p.add("max_grad_norm must be >= 0 (0 disables clipping), got " + maxGradNorm);
        }
        if (!(numTrainEpochs > 0) && maxSteps <= 0) {
            p.add("num_train_epochs must be > 0 (or set max_steps), got " + numTrainEpochs);
        }
        if (!SCHEDULERS.contains(lrSchedulerType)) {
            p.add("lr_scheduler_type: unknown scheduler '" + lrSchedulerType + "'" + Suggest.didYouMean(lrSchedulerType, SCHEDULERS)
                    + "; supported: " + String.join(", ", SCHEDULERS.stream().sorted().toList()));
        }
        if (warmupRatio < 0 || warmupRatio >= 1) {
            p.add("warmup_ratio must be in [0, 1), got " + warmupRatio);
        }
        if (warmupSteps < 0) {
            p.add("warmup_steps must be >= 0, got " + warmupSteps);
        }
        if (warmupSteps > 0 && warmupRatio > 0) {
            p.add("warmup_steps (" + warmupSteps + ") and warmup_ratio (" + warmupRatio + ") contradict each other: set only one");
        }
        if (!Set.of("steps", "epoch", "no").contains(saveStrategy)) {
            p.add("save_strategy must be steps, epoch or no, got '" + saveStrategy + "'");
        }
        if (!Set.of("steps", "epoch", "no").contains(evalStrategy)) {
            p.add("eval_strategy must be steps, epoch or no, got '" + evalStrategy + "'");
        }
        if (saveTotalLimit != null && saveTotalLimit < 1) {
            p.add("save_total_limit must be >= 1, got " + saveTotalLimit);
        }
        if (!OPTIMIZERS.contains(optim)) {
            p.add("optim: '" + optim + "' is not implemented" + (optim.contains("8bit") || optim.contains("4bit")
                    ? " (quantized optimizer states need bitsandbytes' kernels)" : "")
                    + "; supported: adamw_torch (adamw_torch_fused), sgd, and the custom optimizers (use_galore, "
                    + "use_apollo, use_badam, use_muon, use_adam_mini)");
        }
        if (!Set.of("auto", "torchao", "te", "msamp").contains(fp8Backend)) {
            p.add("fp8_backend must be auto, torchao, te or msamp, got '" + fp8Backend + "'");
        }
        if (deepspeed != null && deepspeed.isBlank()) {
            p.add("deepspeed must be the path of a DeepSpeed JSON file (for example ds_z2_config.json), got an empty value");
        }
        if (doPredict && !predictWithGenerate) {
            p.add("do_predict needs predict_with_generate: true (predictions are generated; teacher-forced prediction "
                    + "is not implemented)");
        }
        ConfigProblems.throwIfAny(p);
    }

    /** YAML 1.1 reads an unquoted {@code no} as false: {@code save_strategy: no} means "no". */
    private static String strategy(String s) {
        return s.equals("false") ? "no" : s;
    }

    private static void positive(List<String> problems, String key, int value) {
        if (value < 1) {
            problems.add(key + " must be >= 1, got " + value);
        }
    }

    /** Examples per optimizer step on one rank. */
    public int perRankBatch() {
        return perDeviceTrainBatchSize * gradientAccumulationSteps;
    }
}
