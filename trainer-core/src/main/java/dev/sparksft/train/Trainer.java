package dev.sparksft.train;

import dev.sparksft.UserError;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sparksft.config.TrainingArguments;
import dev.sparksft.data.Batch;
import dev.sparksft.data.Collator;
import dev.sparksft.data.TokenizedExample;
import dev.sparksft.dist.Sharding;
import dev.sparksft.dist.World;
import dev.sparksft.loss.SftLoss;
import dev.sparksft.model.CausalLm;
import dev.sparksft.optim.GradClip;
import dev.sparksft.optim.LayerwiseOptimizer;
import dev.sparksft.optim.Optimizer;
import dev.sparksft.runtime.Autocast;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The SFT loop of one rank (the seed's CustomSeq2SeqTrainer.train, docs/ARCHITECTURE.md invariants 1-3):
 * per optimizer step, the examples come from the {@link BatchPlan}; the number N of labelled
 * targets of the whole step (all micro-batches, all ranks) is all-reduced first; every
 * micro-batch backpropagates sum(token losses) / N; gradients are summed over ranks (all-reduced,
 * or under ZeRO stage 2 reduced to each tensor's owner), clipped to max_grad_norm and applied with
 * the scheduled learning rate (under ZeRO stages 1 and 2 by each tensor's owner, which then
 * broadcasts it). With overlap_gradient_reduction (default) the last micro-batch's backward runs
 * layer by layer ({@link ActivationCheckpointing}, or {@link LayeredBackward} without
 * checkpointing) and starts each gradient bucket's reduction as it completes it; the step waits
 * for all before the clip. Under ZeRO stage 3 a rank holds only its own trainable tensors between uses:
 * the checkpointed forward and backward gather each piece from its owners and reduce its
 * gradients to them ({@link ActivationCheckpointing}), and evaluation, saving and the start
 * broadcast gather the whole model around them. Layer-wise GaLore/APOLLO (one process, one
 * micro-batch per step) steps each tensor inside the backward pass instead, unclipped
 * ({@link LayerwiseOptimizer}). The logged loss is the exact per-step mean sum / N.
 */
public final class Trainer {
    private static final Logger LOG = LoggerFactory.getLogger(Trainer.class);
    private static final ObjectMapper JSON = new ObjectMapper();

    private final TrainingArguments args;
    private final CausalLm model;
    private final Map<String, Tensor> trainable;
    private final int numExamples;
    private final RankBatches batches;
    private final List<TokenizedExample> eval;
    private final World world;
    private final int padId;
    private final Outputs outputs;
    private final Optimizer optimizer;
    private final LayerwiseOptimizer layerwise;   // the optimizer when it steps inside the backward pass, else null
    private final SftLoss loss;
    private final BatchPlan plan;
    private final long totalSteps;
    private final LrSchedule schedule;
    private final TrainingSetup setup;
    private TrainerLog log;
    private final dev.sparksft.model.MoeConfig auxMoe;   // a mixture of experts trained with its load-balancing loss, else null
    private RouterAux stepAux;                           // the current step's term, null without one
    private double auxSinceLog;
    private volatile long currentStep;
    private final BatchImages images;                    // reads and processes a batch's images; NONE for text

    /** The outcome of {@link #train}: train_results.json's fields. */
    public record Result(long globalStep, double epoch, double trainLoss, double runtimeSeconds, long numSamples) {}

    /** A trainer for one process holding the whole training set. */
    public Trainer(TrainingArguments args, CausalLm model, TrainingSetup setup, List<TokenizedExample> train,
                   List<TokenizedExample> eval, World world, int padId, Outputs outputs) {
        this(args, model, setup, new PlannedBatches(train, setup.plan(), world.rank(), world.size(),
                args.perDeviceTrainBatchSize(), args.gradientAccumulationSteps()), eval, world, padId, outputs);
    }

    /**
     * A trainer for one rank of {@code world}.
     *
     * @param setup   the trainable parameters, optimizer, loss, batch plan and schedule of this run
     * @param batches this rank's micro-batches, as the setup's plan assigns them
     * @param eval    the whole eval set; each rank evaluates every world_size-th example
     * @param outputs written by rank 0 only
     */
    public Trainer(TrainingArguments args, CausalLm model, TrainingSetup setup, RankBatches batches,
                   List<TokenizedExample> eval, World world, int padId, Outputs outputs) {
        this(args, model, setup, batches, eval, world, padId, outputs, BatchImages.NONE);
    }

    /** A trainer for one rank whose examples' images {@code images} reads and processes (a vision-language model). */
    public Trainer(TrainingArguments args, CausalLm model, TrainingSetup setup, RankBatches batches,
                   List<TokenizedExample> eval, World world, int padId, Outputs outputs, BatchImages images) {
        this.images = images;
        this.args = args;
        this.model = model;
        this.setup = setup;
        this.auxMoe = RouterAux.of(model);
        this.trainable = setup.trainable();
        this.optimizer = setup.optimizer();
        this.layerwise = optimizer instanceof LayerwiseOptimizer l ? l : null;
        this.loss = setup.loss();
        this.plan = setup.plan();
        this.totalSteps = setup.totalSteps();
        this.schedule = setup.schedule();
        this.numExamples = plan.numExamples();
        this.batches = batches;
        this.eval = eval;
        this.world = world;
        this.padId = padId;
        this.outputs = outputs;
        if (setup.loss().needsReference() != (setup.reference() != null)) {
            throw new IllegalStateException("the loss " + (setup.reference() == null ? "needs a reference model, but "
                    + "the setup has none" : "takes no reference model, but the setup has one"));
        }
        if (setup.sharding().stage() == 3 && !setup.activationCheckpointing()) {
            throw new IllegalStateException("ZeRO stage 3 gathers weights in the checkpointed loop, but the setup "
                    + "turns activation checkpointing off (TrainingSetup.of refuses this)");
        }
        long numParams = trainable.values().stream().mapToLong(Tensor::numel).sum();
        LOG.info("{}training {} examples, {} steps ({} per epoch, global batch {} = {} x {} x {} ranks), {} trainable "
                        + "parameters, {} warmup steps", rankPrefix(world), numExamples, totalSteps, plan.stepsPerEpoch(),
                plan.globalBatch(), args.perDeviceTrainBatchSize(), args.gradientAccumulationSteps(), world.size(),
                numParams, schedule.warmupSteps());
    }

    private static String rankPrefix(World world) {
        return world.size() == 1 ? "" : "rank " + world.rank() + ": ";
    }

    /** The step being trained (0-based), for error reports. */
    public long currentStep() {
        return currentStep;
    }

    /** This rank's progress log (null before training starts): its recent lines go into error reports. */
    public TrainerLog log() {
        return log;
    }

    /** Trains from {@code resume} (null: from the start) to the last step, writing logs and checkpoints. */
    public Result train(Checkpoints.Loaded resume) throws IOException {
        // every replica starts from rank 0's parameters (loading could differ, e.g. a stale local copy)
        List<Tensor> replicated = new ArrayList<>(model.weights().tensors().values());
        if (model.adapter() != null) {
            replicated.addAll(model.adapter().tensors().values());
        }
        if (setup.reference() != null) {
            replicated.addAll(setup.reference().copies().values());   // ASFT: the same reference on every rank
        }
        world.broadcastFromMain(replicated);
        setup.sharding().releaseAll();   // ZeRO 3: from here on a rank holds its own trainable tensors only
        long startStep = 0;
        ArrayNode history = JSON.createArrayNode();
        if (resume != null) {
            checkCompatible(resume.trainerState());
            // the file holds the whole state (whatever world_size wrote it); this rank keeps its share
            if (resume.optimizerState().isEmpty()) {
                LOG.warn("{} holds no optimizer state (saved with save_only_model: true): the optimizer starts afresh "
                        + "at step {}, so this resume is not exact (the weights, schedule and data position are)",
                        resume.dir(), resume.step());
            } else {
                optimizer.load(setup.sharding().ownedState(resume.optimizerState()),
                        resume.trainerState().get("optimizer_steps").asLong());
            }
            startStep = resume.step();
            history = (ArrayNode) resume.trainerState().get("log_history");
            LOG.info("resuming from {} at step {}", resume.dir(), startStep);
        }
        if (world.isMain()) {
            outputs.deleteStaleTemporaries();   // what an earlier, killed attempt left half-written
            if (model.lora() != null && model.lora().initialAdapter() != null) {
                outputs.savePissaInitial(model);   // pissa_convert: the adapter before any step
            }
        }
        log = new TrainerLog(world.isMain() ? outputs.dir() : null, rankPrefix(world), totalSteps, startStep, history,
                outputs::published);
        long start = System.nanoTime();
        double lossSum = 0; // over the steps this run trained, for train_loss
        double lossSinceLog = 0;
        long stepsSinceLog = 0;
        long tokensSinceLog = 0;
        long logStart = System.nanoTime();
        for (long step = startStep; step < totalSteps; step++) {
            double stepLoss;
            double gradNorm;
            double lr = schedule.lr((int) step);
            currentStep = step;
            world.report(step, log.recentLines());
            try (PointerScope scope = new PointerScope()) {
                List<List<TokenizedExample>> micros = batches.step(step);
                long localTargets = 0;
                for (List<TokenizedExample> batch : micros) {
                    for (TokenizedExample ex : batch) {
                        localTargets += ex.numTargets();
                        tokensSinceLog += ex.length();
                    }
                }
                long numTargets = world.allReduceSum(localTargets);        // N of the whole step
                stepAux = null;
                if (auxMoe != null && numTargets > 0) {   // M: the step's micro-batches with data, all ranks
                    stepAux = new RouterAux(auxMoe, world.allReduceSum(micros.stream().filter(m -> !m.isEmpty()).count()));
                }
                double localLossSum = 0;
                Sharding sharding = setup.sharding();
                try (Autocast.StepCasts casts = stepCasts(micros.size())) {
                    for (int m = 0; m < micros.size(); m++) {
                        List<TokenizedExample> batch = micros.get(m);
                        if (numTargets == 0) {
                            continue; // no rank has a target this step: nobody computes or communicates
                        }
                        if (m == micros.size() - 1) {
                            sharding.beginStepReduction();   // overlap: this backward's buckets leave as it completes them
                        }
                        if (batch.isEmpty()) {
                            // no data on this rank for this micro-step: zero loss, zero gradient; under
                            // ZeRO 3 it still takes part in the others' gathers and reductions
                            if (setup.sharding().shardsParameters()) {
                                ActivationCheckpointing.idle(model, setup.sharding());
                            }
                            continue;
                        }
                        try (PointerScope microScope = new PointerScope()) {
                            Batch b = images.collate(batch, padId).to(model.device());   // with its images, if any
                            localLossSum += forwardBackward(b, numTargets, lr);
                        }
                    }
                }   // the step's bf16 weight copies are dropped here, before any weight changes
                // SUM over ranks: into every rank, or (ZeRO 2) into each owner; ZeRO 3: done; with overlap the
                // buckets the last backward did not start, then the wait for all of them (before the clip)
                sharding.reduceGradients(trainable);
                if (step == startStep && sharding.overlaps()) {
                    LOG.info("{}gradient reduction overlapped with the backward: {} buckets, {} started during the "
                            + "last micro-batch's backward", rankPrefix(world), sharding.buckets().size(),
                            sharding.launchedInBackward());
                }
                stepLoss = numTargets == 0 ? 0.0 : world.allReduceSum(localLossSum) / numTargets;
                if (stepAux != null) {   // as HF logs it: the cross-entropy plus coef x the micro-batches' mean aux
                    double auxMean = world.allReduceSum(stepAux.sum) * stepAux.weight / auxMoe.routerAuxLossCoef();
                    stepLoss += auxMoe.routerAuxLossCoef() * auxMean;
                    auxSinceLog += auxMean;
                }
                if (layerwise != null) {
                    // what the backward pass has not stepped (without checkpointing: every tensor, in
                    // order); no clip (its class says why)
                    layerwise.step(lr);
                    gradNorm = layerwise.gradNorm();
                    if (step == startStep) {
                        long all = trainable.values().stream().mapToLong(Tensor::nbytes).sum();
                        LOG.info("layer-wise steps: at most {} MB of gradients existed at once (all of them: {} MB)",
                                String.format("%.1f", layerwise.peakGradientBytes() / 1048576.0),
                                String.format("%.1f", all / 1048576.0));
                    }
                } else {
                    gradNorm = sharding.shardsGradients()   // each rank holds its own gradients only: norm over shards
                            ? GradClip.clip(sharding.owned(trainable).values(), args.maxGradNorm(), world::allReduceSum)
                            : GradClip.clip(trainable.values(), args.maxGradNorm());
                }
                if (!Double.isFinite(stepLoss) || !Double.isFinite(gradNorm)) {
                    // the same values on every rank (all-reduced), so every rank stops here, before the
                    // step could write non-finite weights (layer-wise: after, as each tensor was stepped
                    // in the backward pass) and before anything of this step is saved
                    throw new DivergedException(step + 1, stepLoss, gradNorm, args.learningRate());
                }
                if (layerwise == null) {
                    optimizer.step(lr);                 // this rank's share (ZeRO 1, 2) or everything
                }
                sharding.broadcastUpdated(trainable);   // ZeRO 1, 2: each owner's stepped tensors to every rank (not 3)
                zeroGrads();
            }
            long done = step + 1;
            double epoch = (double) done / plan.stepsPerEpoch();
            lossSum += stepLoss;
            lossSinceLog += stepLoss;
            stepsSinceLog++;
            if (done % args.loggingSteps() == 0 || done == totalSteps) {
                double seconds = (System.nanoTime() - logStart) / 1e9;
                log.train(done, epoch, lossSinceLog / stepsSinceLog, schedule.lr((int) done), gradNorm,
                        world.allReduceSum((double) tokensSinceLog) / seconds);
                if (auxMoe != null) {   // the load-balancing loss as its own figure, mean over the logged steps
                    ((com.fasterxml.jackson.databind.node.ObjectNode) log.history().get(log.history().size() - 1))
                            .put("aux_loss", auxSinceLog / stepsSinceLog);
                    auxSinceLog = 0;
                }
                lossSinceLog = 0;
                stepsSinceLog = 0;
                tokensSinceLog = 0;
                logStart = System.nanoTime();
            }
            boolean epochEnd = done % plan.stepsPerEpoch() == 0;
            if (!eval.isEmpty() && (args.evalStrategy().equals("steps") && done % args.evalSteps() == 0
                    || args.evalStrategy().equals("epoch") && epochEnd)) {
                log.eval(done, epoch, evaluate());
            }
            if (done < totalSteps && Checkpoints.savesBeforeTheEnd(args, done, plan.stepsPerEpoch())) {
                saveCheckpoint(done, epoch, log.history());
            }
        }
        double runtime = (System.nanoTime() - start) / 1e9;
        double epoch = (double) totalSteps / plan.stepsPerEpoch();
        if (!args.saveStrategy().equals("no")) {
            saveCheckpoint(totalSteps, epoch, log.history());
        }
        if (world.isMain()) {
            outputs.writeTrainerState(state(totalSteps, epoch, log.history()));
            if (setup.plotLoss()) {
                outputs.plotLoss(log.lossCurve());
            }
        }
        double trainLoss = totalSteps > startStep ? lossSum / (totalSteps - startStep) : Double.NaN;
        return new Result(totalSteps, epoch, trainLoss, runtime, numExamples);
    }

    /**
     * {@link #train}, then rank 0 saves the final model and train_results.json (with
     * all_results.json) in output_dir.
     */
    public Result trainAndSave(Checkpoints.Loaded resume) throws IOException {
        Result result = train(resume);
        setup.sharding().gatherAll();          // ZeRO 3: rank 0 writes whole tensors
        if (world.isMain()) {
            outputs.saveModel(model);
            if (model.lora() != null && model.lora().initialAdapter() != null) {
                outputs.savePissaConversion(model);   // pissa_convert: pissa_backup/ and pissa_converted/
            }
        }
        setup.sharding().releaseAll();
        if (world.isMain()) {
            Map<String, Object> r = new LinkedHashMap<>();
            r.put("epoch", result.epoch());
            r.put("train_loss", result.trainLoss());
            r.put("train_runtime", result.runtimeSeconds());
            r.put("train_samples_per_second", result.numSamples() * result.epoch() / result.runtimeSeconds());
            r.put("train_steps_per_second", result.globalStep() / result.runtimeSeconds());
            outputs.writeResults("train", r);
            LOG.info("training done: {} steps, train_loss {}, {} s; model saved to {}", result.globalStep(),
                    String.format("%.4f", result.trainLoss()), String.format("%.1f", result.runtimeSeconds()), outputs.dir());
        }
        return result;
    }

    /** {@link #evaluate}, then rank 0 writes eval_results.json (with all_results.json). */
    public Map<String, Object> evaluateAndSave(double epoch) throws IOException {
        if (eval.isEmpty()) {
            throw new UserError("do_eval needs an eval set: set eval_dataset or val_size");
        }
        long start = System.nanoTime();
        Map<String, Double> metrics = evaluate();
        double seconds = (System.nanoTime() - start) / 1e9;
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("epoch", epoch);
        r.putAll(Evaluator.results(metrics, seconds, eval.size()));
        if (world.isMain()) {
            outputs.writeResults("eval", r);
            LOG.info("eval: {}", r);
        }
        return r;
    }

    /** Evaluation metrics on the eval set (no eval_ prefix); each rank scores every world_size-th example. */
    public Map<String, Double> evaluate() {
        List<TokenizedExample> mine = new ArrayList<>();
        for (int i = world.rank(); i < eval.size(); i += world.size()) {
            mine.add(eval.get(i));
        }
        Evaluator.Sums s;
        setup.sharding().gatherAll();          // ZeRO 3: the whole model for the plain forward
        try (Autocast autocast = Autocast.bf16(model.device(), args.bf16())) {
            s = Evaluator.sums(model, mine, args.perDeviceEvalBatchSize(), padId, setup.computeAccuracy(), images);
        }
        setup.sharding().releaseAll();
        return Evaluator.metrics(new Evaluator.Sums(world.allReduceSum(s.lossSum()), world.allReduceSum(s.numTargets()),
                world.allReduceSum(s.accuracySum()), world.allReduceSum(s.accuracyCount())), setup.computeAccuracy());
    }

    /**
     * Whether the micro-batches of a step share autocast's bf16 copies of the float32 weights
     * (cast once per step, not once per micro-batch): with bf16 autocast and more than one
     * micro-batch, unless the run trades that memory away (activation checkpointing keeps one
     * layer's copies at a time; ZeRO 3's gathered weights are new tensors each forward).
     */
    private Autocast.StepCasts stepCasts(int microBatches) {
        boolean keep = args.bf16() && microBatches > 1 && !setup.activationCheckpointing()
                && !setup.sharding().shardsParameters();
        return keep ? Autocast.StepCasts.keep() : Autocast.StepCasts.none();
    }

    /**
     * One micro-batch: backpropagates sum(token losses) / N (N of the whole step) and returns the
     * sum; with activation checkpointing, layer by layer (same gradients, less memory), and
     * layer-wise GaLore/APOLLO then steps each layer as soon as its backward is done. ASFT's
     * reference logits, (batch, seq, vocab), come first, without a graph, and live until the loss.
     */
    private double forwardBackward(Batch b, long numTargets, double lr) {
        Tensor refLogits = setup.reference() == null ? null : setup.reference().logits(b, args.bf16());
        try (Training training = new Training(model)) {
            if (setup.activationCheckpointing()) {
                return ActivationCheckpointing.forwardBackward(model, b, refLogits, loss, numTargets, args.bf16(),
                        setup.sharding(), layerwise, lr, stepAux);
            }
            // the step's last micro-batch with overlap: backward piece by piece, so buckets leave as they complete
            return setup.sharding().reducing() && stepAux == null
                    ? LayeredBackward.forwardBackward(model, b, refLogits, loss, numTargets, args.bf16(), setup.sharding())
                    : plainForwardBackward(model, b, refLogits, loss, numTargets, args.bf16(), stepAux);
        }
    }

    /** The micro-batch's forward with its whole autograd graph, then backward of sum / N; returns the sum. */
    static double plainForwardBackward(CausalLm model, Batch b, SftLoss loss, long numTargets, boolean bf16) {
        return plainForwardBackward(model, b, null, loss, numTargets, bf16);
    }

    /** {@link #plainForwardBackward(CausalLm, Batch, SftLoss, long, boolean)} with ASFT's reference logits (or null). */
    static double plainForwardBackward(CausalLm model, Batch b, Tensor refLogits, SftLoss loss, long numTargets,
                                       boolean bf16) {
        return plainForwardBackward(model, b, refLogits, loss, numTargets, bf16, null);
    }

    /** The overload above with a mixture of experts' load-balancing term {@code aux} (null: none) backpropagated too. */
    static double plainForwardBackward(CausalLm model, Batch b, Tensor refLogits, SftLoss loss, long numTargets,
                                       boolean bf16, RouterAux aux) {
        Tensor sum;
        Tensor total;
        try (Autocast autocast = Autocast.bf16(model.device(), bf16)) {
            List<Tensor> router = new java.util.ArrayList<>();
            CausalLm.Context ctx = model.context(b);
            Tensor x = model.embed(b);
            for (int i = 0; i < model.numLayers(); i++) {
                x = model.layer(i, x, aux == null ? ctx : ctx.collectingRouterLogits(router));
            }
            sum = loss.sum(model.head(x), b.labels(), refLogits);
            total = sum.div(new Scalar((double) numTargets));
            if (aux != null) {
                total = total.add(aux.term(router, b.attentionMask()));
            }
        }
        total.backward();
        return sum.item_double();
    }

    /** A training forward pass: LoRA dropout on inside, off again after. */
    record Training(CausalLm model) implements AutoCloseable {
        Training {
            if (model.adapter() != null) {
                model.adapter().train(true);
            }
        }

        @Override
        public void close() {
            if (model.adapter() != null) {
                model.adapter().train(false);
            }
        }
    }

    /** param.grad = None after the step (HF's zero_grad(set_to_none=True)): no gradient memory between steps. */
    private void zeroGrads() {
        for (Tensor p : trainable.values()) {
            if (p.grad().defined()) {
                p.mutable_grad().put(new Tensor());
            }
        }
    }

    private void saveCheckpoint(long step, double epoch, ArrayNode history) throws IOException {
        // every rank takes part: under ZeRO the optimizer's shards meet on rank 0 (freed with this scope)
        try (PointerScope scope = new PointerScope()) {
            // save_only_model: the model and trainer state only; a resume from it restarts the optimizer
            Map<String, Tensor> optimizerState = args.saveOnlyModel() ? null : setup.sharding().gatherState(optimizer.state());
            setup.sharding().gatherAll();      // ZeRO 3: the checkpoint's model is whole, as at any stage
            if (world.isMain()) {
                Path dir = Checkpoints.save(outputs, step, model, optimizerState, state(step, epoch, history));
                LOG.info("saved {}", dir);
                if (args.saveTotalLimit() != null) {
                    Checkpoints.rotate(outputs, args.saveTotalLimit());
                }
            }
            setup.sharding().releaseAll();
        }
    }

    /** trainer_state.json: Hugging Face's fields plus what an exact resume needs. */
    private ObjectNode state(long step, double epoch, ArrayNode history) {
        ObjectNode s = JSON.createObjectNode();
        s.put("global_step", step).put("max_steps", totalSteps).put("epoch", epoch)
                .put("num_train_epochs", Math.ceil((double) totalSteps / plan.stepsPerEpoch()))
                .put("logging_steps", args.loggingSteps()).put("eval_steps", args.evalSteps())
                .put("save_steps", args.saveSteps()).put("train_batch_size", args.perDeviceTrainBatchSize());
        s.set("log_history", history.deepCopy());
        // what makes the resumed run see exactly the batches the uninterrupted one would have seen
        s.put("optimizer_steps", optimizer.numSteps()).put("seed", args.seed())
                .put("num_examples", numExamples).put("global_batch_size", args.perRankBatch() * world.size())
                .put("shuffle", plan.shuffles()).put("lr_scheduler_type", args.lrSchedulerType());
        return s;
    }

    private void checkCompatible(ObjectNode saved) {
        Map<String, Object> now = new LinkedHashMap<>();
        now.put("seed", (long) args.seed());
        now.put("num_examples", (long) numExamples);
        now.put("global_batch_size", (long) args.perRankBatch() * world.size());
        now.put("max_steps", totalSteps);
        for (Map.Entry<String, Object> e : now.entrySet()) {
            long was = saved.path(e.getKey()).asLong(-1);
            if (was != (Long) e.getValue()) {
                throw new UserError("resume_from_checkpoint: the checkpoint was written with " + e.getKey()
                        + " = " + was + " but this run has " + e.getValue() + "; resuming would replay different "
                        + "batches. Use the checkpoint's settings or start a new output_dir");
            }
        }
    }
}
