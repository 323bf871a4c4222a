package dev.sparksft.train;

import dev.sparksft.config.FinetuningArguments;
import dev.sparksft.config.TrainingArguments;
import dev.sparksft.dist.World;
import dev.sparksft.loss.SftLoss;
import dev.sparksft.model.CausalLm;
import dev.sparksft.optim.Optimizer;
import dev.sparksft.optim.Optimizers;
import dev.sparksft.runtime.Torch;
import java.util.Map;
import org.bytedeco.pytorch.Tensor;

/**
 * What a {@link Trainer} is handed, built once per rank from the configuration: the parameters
 * that train, the optimizer over them, the loss, the batch plan (which examples each step
 * trains on), the number of steps and the learning-rate schedule, plus the two reporting flags
 * the trainer honours. The trainer reads no fine-tuning arguments itself.
 */
public record TrainingSetup(Map<String, Tensor> trainable, Optimizer optimizer, SftLoss loss, BatchPlan plan,
                            long totalSteps, LrSchedule schedule, boolean activationCheckpointing,
                            boolean computeAccuracy, boolean plotLoss) {

    /**
     * The setup of {@code model} trained on {@code numExamples} examples (all ranks) by
     * {@code world}: freezes what does not train, seeds LoRA dropout with this rank's own
     * generator, and builds the optimizer as LLaMA-Factory's create_custom_optimizer would.
     */
    public static TrainingSetup of(TrainingArguments args, FinetuningArguments ft, CausalLm model, int numExamples,
                                   World world) {
        return of(args, ft, model, numExamples, world, true);
    }

    /** @param activationCheckpointing recompute each decoder layer in the backward pass (ModelArguments') */
    public static TrainingSetup of(TrainingArguments args, FinetuningArguments ft, CausalLm model, int numExamples,
                                   World world, boolean activationCheckpointing) {
        Map<String, Tensor> trainable = TrainableParameters.select(model, ft);
        if (model.lora() != null) {   // LoRA dropout draws from this rank's own generator
            model.lora().seedDropout(Torch.generator(args.seed(), world.rank()));
        }
        Optimizer optimizer = Optimizers.create(trainable, model.config(), args, ft, args.seed());
        SftLoss loss = new SftLoss(ft.useDftLoss() ? SftLoss.Kind.DFT : ft.useEaftLoss() ? SftLoss.Kind.EAFT
                : SftLoss.Kind.CROSS_ENTROPY, ft.eaftAlpha());
        BatchPlan plan = plan(numExamples, args, ft, world.size());
        long totalSteps = totalSteps(args, plan);
        int warmup = LrSchedule.warmupSteps(args.warmupSteps(), args.warmupRatio(), (int) totalSteps);
        LrSchedule schedule = new LrSchedule(args.lrSchedulerType(), args.learningRate(), warmup, (int) totalSteps,
                args.lrSchedulerKwargs());
        return new TrainingSetup(trainable, optimizer, loss, plan, totalSteps, schedule, activationCheckpointing,
                ft.computeAccuracy(), ft.plotLoss());
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
