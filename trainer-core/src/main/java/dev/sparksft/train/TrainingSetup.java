package dev.sparksft.train;

import dev.sparksft.UserError;
import dev.sparksft.config.DeepSpeedConfig;
import dev.sparksft.config.FinetuningArguments;
import dev.sparksft.config.SftConfig;
import dev.sparksft.config.TrainingArguments;
import dev.sparksft.dist.Sharding;
import dev.sparksft.dist.World;
import dev.sparksft.loss.SftLoss;
import dev.sparksft.model.CausalLm;
import dev.sparksft.optim.Optimizer;
import dev.sparksft.optim.Optimizers;
import dev.sparksft.runtime.Torch;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What a {@link Trainer} is handed, built once per rank from the configuration: the parameters
 * that train, how the ranks share them (the ZeRO stage of {@code deepspeed}), the optimizer over
 * this rank's share, the loss, the batch plan (which examples each step
 * trains on), the number of steps and the learning-rate schedule, plus the two reporting flags
 * the trainer honours, whether it checkpoints activations, and the reference model of the ASFT loss
 * (null for every other loss). The trainer reads no fine-tuning arguments itself.
 */
public record TrainingSetup(Map<String, Tensor> trainable, Sharding sharding, Optimizer optimizer, SftLoss loss,
                            BatchPlan plan, long totalSteps, LrSchedule schedule, boolean activationCheckpointing,
                            boolean computeAccuracy, boolean plotLoss, ReferenceModel reference) {
    private static final Logger LOG = LoggerFactory.getLogger(TrainingSetup.class);

    /**
     * The setup of {@code model} trained on {@code numExamples} examples (all ranks) by
     * {@code world}: freezes what does not train, seeds LoRA dropout with this rank's own
     * generator, and builds the optimizer as LLaMA-Factory's create_custom_optimizer would.
     */
    public static TrainingSetup of(TrainingArguments args, FinetuningArguments ft, CausalLm model, int numExamples,
                                   World world) {
        return of(args, ft, model, numExamples, world, true);
    }

    /**
     * The setup of a run's rank, with the ASFT loss's reference model (use_asft_loss) read from
     * {@code modelDir}, model_name_or_path (local).
     */
    public static TrainingSetup of(SftConfig config, CausalLm model, int numExamples, World world, Path modelDir)
            throws IOException {
        FinetuningArguments ft = config.finetuning();
        TrainingSetup s = build(config.training(), ft, model, numExamples, world, config.model().activationCheckpointing());
        if (!ft.useAsftLoss()) {
            return s;
        }
        ReferenceModel reference = ReferenceModel.load(config, model, s.trainable().keySet(), modelDir);
        LOG.info("{}ASFT: reference model holds {} tensors of its own ({} elements), the rest shared with the model",
                world.size() == 1 ? "" : "rank " + world.rank() + ": ", reference.copies().size(),
                reference.copies().values().stream().mapToLong(Tensor::numel).sum());
        return new TrainingSetup(s.trainable(), s.sharding(), s.optimizer(), s.loss(), s.plan(), s.totalSteps(),
                s.schedule(), s.activationCheckpointing(), s.computeAccuracy(), s.plotLoss(), reference);
    }

    /** @param activationCheckpointing recompute each decoder layer in the backward pass (ModelArguments') */
    public static TrainingSetup of(TrainingArguments args, FinetuningArguments ft, CausalLm model, int numExamples,
                                   World world, boolean activationCheckpointing) {
        if (ft.useAsftLoss()) {
            throw new IllegalStateException("use_asft_loss needs its reference model: build the setup with "
                    + "TrainingSetup.of(config, model, numExamples, world, modelDir)");
        }
        return build(args, ft, model, numExamples, world, activationCheckpointing);
    }

    private static TrainingSetup build(TrainingArguments args, FinetuningArguments ft, CausalLm model, int numExamples,
                                       World world, boolean activationCheckpointing) {
        if (ft.layerwise() && (world.size() != 1 || args.gradientAccumulationSteps() != 1 || args.deepspeed() != null)) {
            throw new IllegalStateException(ft.layerwiseKey() + " reached the trainer with world_size " + world.size()
                    + ", gradient_accumulation_steps " + args.gradientAccumulationSteps() + ", deepspeed "
                    + args.deepspeed() + " (the configuration and the Spark job's run checks refuse these)");
        }
        Map<String, Tensor> trainable = TrainableParameters.select(model, ft);
        if (model.adapter() != null) {   // adapter dropout draws from this rank's own generator
            model.adapter().seedDropout(Torch.generator(args.seed(), world.rank()));
        }
        Sharding sharding = sharding(args, ft, model, trainable, world, activationCheckpointing);
        Optimizer optimizer = Optimizers.create(trainable, sharding.owned(trainable).keySet(), model.config(), args, ft,
                args.seed());
        SftLoss loss = ft.useAsftLoss() ? new SftLoss(SftLoss.Kind.ASFT, ft.asftAlpha())
                : new SftLoss(ft.useDftLoss() ? SftLoss.Kind.DFT : ft.useEaftLoss() ? SftLoss.Kind.EAFT
                : SftLoss.Kind.CROSS_ENTROPY, ft.eaftAlpha());
        BatchPlan plan = plan(numExamples, args, ft, world.size());
        long totalSteps = totalSteps(args, plan);
        int warmup = LrSchedule.warmupSteps(args.warmupSteps(), args.warmupRatio(), (int) totalSteps);
        LrSchedule schedule = new LrSchedule(args.lrSchedulerType(), args.learningRate(), warmup, (int) totalSteps,
                args.lrSchedulerKwargs());
        return new TrainingSetup(trainable, sharding, optimizer, loss, plan, totalSteps, schedule,
                activationCheckpointing, ft.computeAccuracy(), ft.plotLoss(), null);
    }

    /**
     * The ZeRO stage of {@code deepspeed} (0 without it) over {@code trainable}. Every rank reads
     * the file itself, so a rank that cannot see it fails with the path.
     */
    private static Sharding sharding(TrainingArguments args, FinetuningArguments ft, CausalLm model,
                                     Map<String, Tensor> trainable, World world, boolean activationCheckpointing) {
        if (args.deepspeed() == null) {
            return new Sharding(world, 0, trainable, args.overlapGradientReduction(), Sharding.DEFAULT_BUCKET_ELEMENTS);
        }
        DeepSpeedConfig ds = DeepSpeedConfig.load(Path.of(args.deepspeed()), args, world.size());
        if (ds.stage() >= 1 && ft.useBadam() && ft.badamMode().equals("layer")) {
            throw new UserError("use_badam with badam_mode: layer cannot run under deepspeed ZeRO stage " + ds.stage()
                    + " (" + ds.file() + "): BAdam switches the one trainable layer block every few steps, so the "
                    + "shards would change with it; use badam_mode: ratio, or a DeepSpeed file with stage 0");
        }
        if (ds.stage() == 3 && ft.useAsftLoss() && trainable.keySet().stream().anyMatch(model.weights().tensors()::containsKey)) {
            throw new UserError("use_asft_loss under deepspeed ZeRO stage 3 (" + ds.file() + "): the reference model "
                    + "holds a whole copy of the weights that train on every rank, which would undo stage 3's sharding "
                    + "of them; use a DeepSpeed file with stage 2 (it replicates the weights anyway), or "
                    + "finetuning_type: lora without additional_target (its reference shares the frozen base)");
        }
        if (ds.offloadOptimizer()) {
            if (model.device().type().value == torch.DeviceType.CUDA.value) {
                throw new UserError("deepspeed (" + ds.file() + "): zero_optimization.offload_optimizer.device: cpu "
                        + "is not implemented for GPU runs yet; remove offload_optimizer (or set its device to none)");
            }
            LOG.info("deepspeed: offload_optimizer.device cpu: on a CPU run the optimizer state and step are "
                    + "already in host memory");
        }
        if (ds.stage() == 3 && !activationCheckpointing) {
            throw new UserError("deepspeed (" + ds.file() + "): zero_optimization.stage: 3 gathers each decoder layer's "
                    + "weights around its recomputation, so it needs activation checkpointing, but "
                    + "disable_gradient_checkpointing is true (or gradient_checkpointing: false); remove "
                    + "disable_gradient_checkpointing, or use a DeepSpeed file with stage 2");
        }
        if (ds.offloadParam()) {
            if (model.device().type().value == torch.DeviceType.CUDA.value) {
                throw new UserError("deepspeed (" + ds.file() + "): zero_optimization.offload_param.device: cpu "
                        + "is not implemented for GPU runs yet; remove offload_param (or set its device to none)");
            }
            LOG.info("deepspeed: offload_param.device cpu: on a CPU run the parameters are already in host memory");
        }
        Sharding sharding = new Sharding(world, ds.stage(), trainable, args.overlapGradientReduction(),
                Sharding.DEFAULT_BUCKET_ELEMENTS);
        if (ds.stage() >= 1) {
            Map<String, Tensor> mine = sharding.owned(trainable);
            LOG.info("{}ZeRO stage {}: this rank steps {} of {} trainable tensors ({} of {} elements)"
                            + (ds.stage() == 3 ? "; it holds only these between uses" : ""),
                    world.size() == 1 ? "" : "rank " + world.rank() + ": ", ds.stage(), mine.size(), trainable.size(),
                    sharding.partition().load(world.rank()),
                    trainable.values().stream().mapToLong(Tensor::numel).sum());
        }
        return sharding;
    }

    /** Which examples each step trains on: depends on the global batch, not on how it is split. */
    public static BatchPlan plan(int numExamples, TrainingArguments args, FinetuningArguments ft, int worldSize) {
        return new BatchPlan(numExamples, args.perRankBatch() * worldSize, args.seed(), !ft.disableShuffling());
    }

    /** max_steps if set, else num_train_epochs (fractions allowed) of the plan's steps. */
    public static long totalSteps(TrainingArguments args, BatchPlan plan) {
        return args.maxSteps() > 0 ? args.maxSteps() : (long) Math.ceil(args.numTrainEpochs() * plan.stepsPerEpoch());
    }
}
