package dev.sparksft.run;

import dev.sparksft.config.DeepSpeedConfig;
import dev.sparksft.config.FinetuningArguments;
import dev.sparksft.config.SftConfig;
import dev.sparksft.config.TrainingArguments;
import dev.sparksft.dist.Partition;
import dev.sparksft.model.Dtype;
import dev.sparksft.model.ModelConfig;
import dev.sparksft.model.ModelLayout;
import dev.sparksft.model.OftAdapter;
import dev.sparksft.train.Models;
import dev.sparksft.train.TrainableParameters;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.BiFunction;

/**
 * What one rank of a run holds, in bytes, before it starts: weights (each in the dtype it is
 * held in: {@link Models#heldDtype}), gradients (of what trains, float32 masters or bf16 with
 * pure_bf16), optimizer state (by method; sharded by ZeRO stage 1, gradients by stage 2 and the
 * trainable weights by stage 3 (plus one gathered layer), by the same whole-tensor
 * {@link Partition} the run uses) and activations at
 * per_device_train_batch_size x cutoff_len tokens, with and without activation checkpointing:
 * <pre>
 *   stored layer inputs  = L x T x H x 4                   (checkpointing only)
 *   one layer's graph    = T x (A_H x H + A_I x I) x 4     (one layer with checkpointing, every layer without)
 *   its backward's grads = half a layer's graph
 *   logits and their grad = T x V x 4 x 3
 *   ASFT                  = + T x V x 4 x 4                (reference logits, its log-softmax and softmax, a KL temporary)
 * </pre>
 * With use_asft_loss the weights include the reference model's own copy of every weight that
 * trains, in the compute dtype (bfloat16 with bf16 or pure_bf16, else float32; LoRA's reference
 * shares the frozen base and copies only additional_target modules).
 * with T tokens, H hidden, I intermediate, V vocabulary, L layers; A_H and A_I count the
 * activations a decoder layer's autograd graph keeps per token (calibrated against measured
 * peaks: scripts/bench-memory). {@link #RUNTIME} is the JVM, libtorch and the tokenizer.
 *
 * <p>{@code numTrainable} (elements, all ranks together) and {@code checkpointOptimizer} (the whole
 * optimizer state, as a checkpoint holds it after gathering every rank's share) size what a run
 * writes to disk ({@link DiskEstimate}).
 */
public record MemoryEstimate(long weights, long gradients, long optimizer, long activations, long activationsWithout,
                             boolean checkpointing, int worldSize, int zeroStage, long numTrainable,
                             long checkpointOptimizer) {
    /** The process itself: JVM heap in use, libtorch, the tokenizer (measured: about 265 MB). */
    public static final long RUNTIME = 270L << 20;
    /** Activations a layer's graph keeps per token, in units of hidden_size and of intermediate_size. */
    static final double A_H = 34;
    static final double A_I = 6;

    /** The estimate for {@code config}'s model (its config.json), method, ZeRO stage and world_size. */
    public static MemoryEstimate of(SftConfig config, ModelConfig cfg) {
        TrainingArguments args = config.training();
        int worldSize = config.distributed().worldSize();
        return of(config, cfg, args.deepspeed() == null ? 0
                : DeepSpeedConfig.load(Path.of(args.deepspeed()), args, worldSize).stage());
    }

    /** The estimate under ZeRO stage {@code stage} (what the deepspeed file asks for). */
    static MemoryEstimate of(SftConfig config, ModelConfig cfg, int stage) {
        TrainingArguments args = config.training();
        FinetuningArguments ft = config.finetuning();
        int worldSize = config.distributed().worldSize();
        Map<String, long[]> shapes = new ModelLayout(cfg).expectedShapes();
        BiFunction<String, ModelConfig, Dtype> held = Models.heldDtype(config);
        Set<String> trainsBase = TrainableParameters.baseWeights(shapes.keySet(), cfg, ft);
        long weights = 0;
        Map<String, Long> trainable = new LinkedHashMap<>();      // numel of every tensor that trains
        Map<String, Integer> gradBytes = new LinkedHashMap<>();
        for (Map.Entry<String, long[]> e : shapes.entrySet()) {
            long n = numel(e.getValue());
            int bytes = held == null ? 4 : held.apply(e.getKey(), cfg).numBytes;
            weights += n * bytes;
            if (trainsBase.contains(e.getKey())) {
                trainable.put(e.getKey(), n);
                gradBytes.put(e.getKey(), bytes);
            }
        }
        if (ft.lora()) {    // A (r, in) and B (out, r) in float32 for each adapted linear weight
            List<String> targets = ft.loraTarget().equals(List.of("all")) ? ModelLayout.LAYER_LINEARS : ft.loraTarget();
            for (Map.Entry<String, long[]> e : shapes.entrySet()) {
                String module = ModelLayout.layerLinearModule(e.getKey());
                if (module != null && targets.contains(ModelLayout.leaf(module))) {
                    long n = (long) ft.loraRank() * (e.getValue()[0] + e.getValue()[1]);
                    weights += 4 * n;
                    trainable.put(module + ".lora", n);
                    gradBytes.put(module + ".lora", 4);
                }
            }
        }
        if (ft.oft()) {     // oft_R (k, b(b-1)/2) in float32 for each adapted linear weight, k b = in_features
            List<String> targets = ft.oftTarget().equals(List.of("all")) ? ModelLayout.LAYER_LINEARS : ft.oftTarget();
            for (Map.Entry<String, long[]> e : shapes.entrySet()) {
                String module = ModelLayout.layerLinearModule(e.getKey());
                if (module != null && targets.contains(ModelLayout.leaf(module))) {
                    long n = OftAdapter.blocks(e.getValue()[1], ft.oftRank(), ft.oftBlockSize()).numParameters();
                    weights += 4 * n;
                    trainable.put(module + ".oft_R", n);
                    gradBytes.put(module + ".oft_R", 4);
                }
            }
        }
        if (ft.useAsftLoss()) {   // train/ReferenceModel: a copy of what trains, the frozen rest shared
            int computeBytes = ft.pureBf16() || args.bf16() ? 2 : 4;
            for (String name : trainsBase) {
                weights += numel(shapes.get(name)) * computeBytes;
            }
        }
        Partition partition = Partition.of(trainable, worldSize);
        double optimizerShare = stage >= 1 ? share(partition, trainable, worldSize) : 1;
        double gradientShare = stage >= 2 ? share(partition, trainable, worldSize) : 1;
        if (stage >= 3 && worldSize > 1) {
            // trainable weights live with their owner; one group (a layer, or the embedding and head) is
            // gathered whole while it computes
            long trainableBytes = 0;
            Map<Integer, Long> groups = new LinkedHashMap<>();
            for (Map.Entry<String, Long> e : trainable.entrySet()) {
                long bytes = e.getValue() * gradBytes.get(e.getKey());
                trainableBytes += bytes;
                groups.merge(ModelLayout.layerIndex(e.getKey()), bytes, Long::sum);
            }
            long largestGroup = groups.values().stream().mapToLong(Long::longValue).max().orElse(0);
            weights = weights - trainableBytes + (long) (trainableBytes * share(partition, trainable, worldSize))
                    + largestGroup;
        }
        long gradients = 0;
        long optimizer = 0;
        for (Map.Entry<String, Long> e : trainable.entrySet()) {
            int bytes = gradBytes.get(e.getKey());
            gradients += e.getValue() * bytes;
            optimizer += stateElements(e.getKey(), shapes.get(e.getKey()), e.getValue(), ft, args, cfg) * bytes;
        }
        if (ft.useBadam() && ft.badamMode().equals("layer")) {
            // one decoder layer trains at a time: only it has gradients and AdamW state (the rest none)
            long block = 0;
            long blockState = 0;
            for (Map.Entry<String, Long> e : trainable.entrySet()) {
                if (ModelLayout.layerIndex(e.getKey()) == 0) {
                    block += e.getValue() * gradBytes.get(e.getKey());
                    blockState += 2 * e.getValue() * gradBytes.get(e.getKey());
                }
            }
            gradients = block;
            optimizer = blockState;
        }
        boolean checkpointing = config.model().activationCheckpointing();
        if (ft.layerwise() && checkpointing) {
            gradients = layerwiseGradients(trainable, gradBytes, cfg.tieWordEmbeddings());
        }
        long tokens = (long) args.perDeviceTrainBatchSize() * config.data().cutoffLen();
        long h = cfg.hiddenSize();
        long layer = (long) (tokens * (A_H * h + A_I * cfg.intermediateSize()) * 4);
        long head = tokens * cfg.vocabSize() * 4L * (ft.useAsftLoss() ? 3 + 4 : 3);
        long stored = (long) cfg.numLayers() * tokens * h * 4;
        // the backward of one layer adds gradients of about half its graph's size while that graph is alive
        long backward = layer / 2;
        return new MemoryEstimate(weights, (long) (gradients * gradientShare), (long) (optimizer * optimizerShare),
                stored + layer + backward + head, (long) cfg.numLayers() * layer + backward + head, checkpointing,
                worldSize, stage, trainable.values().stream().mapToLong(Long::longValue).sum(), optimizer);
    }

    /**
     * Layer-wise GaLore/APOLLO with checkpointing: each group's gradients are stepped and freed once
     * its backward is done, so the most at once is the largest of the final norm and LM head's, one
     * layer's and the embedding's; a tied embedding's lasts from the head's backward to its own.
     */
    private static long layerwiseGradients(Map<String, Long> trainable, Map<String, Integer> gradBytes, boolean tied) {
        Map<Integer, Long> layers = new LinkedHashMap<>();
        long embedding = 0;
        long head = 0;
        for (Map.Entry<String, Long> e : trainable.entrySet()) {
            long bytes = e.getValue() * gradBytes.get(e.getKey());
            int index = ModelLayout.layerIndex(e.getKey());
            if (index >= 0) {
                layers.merge(index, bytes, Long::sum);
            } else if (e.getKey().equals(ModelLayout.EMBEDDING)) {
                embedding = bytes;
            } else {
                head += bytes;
            }
        }
        long largestLayer = layers.values().stream().mapToLong(Long::longValue).max().orElse(0);
        return tied ? embedding + Math.max(head, largestLayer) : Math.max(Math.max(head, largestLayer), embedding);
    }

    /** Optimizer state elements for one trainable tensor (its numel {@code n}). */
    private static long stateElements(String name, long[] shape, long n, FinetuningArguments ft, TrainingArguments args,
                                      ModelConfig cfg) {
        if (args.optim().equals("sgd") && !ft.useGalore() && !ft.useApollo() && !ft.useBadam()) {
            return 0;
        }
        boolean matrix = shape != null && shape.length == 2 && ModelLayout.layerLinearModule(name) != null;
        if ((ft.useGalore() || ft.useApollo()) && matrix) {      // moments in the subspace, plus the projection
            long rank = ft.useGalore() ? ft.galoreRank() : ft.apolloRank();
            return 2 * rank * Math.max(shape[0], shape[1]) + rank * Math.min(shape[0], shape[1]);
        }
        if (ft.useBadam() && ft.badamMode().equals("ratio")) {
            return ModelLayout.isEmbeddingOrHead(name) ? 0 : 2 * (long) Math.ceil(n * ft.badamUpdateRatio());
        }
        if (ft.useMuon() && shape != null && ModelLayout.isHiddenMatrix(name, shape.length)) {
            return n;                                              // the momentum buffer
        }
        if (ft.useAdamMini() && ModelLayout.adamMiniBlocks(name) != ModelLayout.SecondMoments.PER_WEIGHT) {
            return n;                                              // m, and a v per head or per tensor
        }
        return 2 * n;                                              // AdamW's m and v
    }

    /** The largest share of the trainable elements one rank owns. */
    private static double share(Partition partition, Map<String, Long> trainable, int worldSize) {
        long total = trainable.values().stream().mapToLong(Long::longValue).sum();
        long most = 0;
        for (int r = 0; r < worldSize; r++) {
            most = Math.max(most, partition.load(r));
        }
        return total == 0 ? 0 : (double) most / total;
    }

    private static long numel(long[] shape) {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        return n;
    }

    /** Everything one rank holds at its peak (with the run's checkpointing choice). */
    public long total() {
        return RUNTIME + weights + gradients + optimizer + (checkpointing ? activations : activationsWithout);
    }

    /**
     * Refuses a run whose estimate exceeds {@code deviceBytes} (each rank's device memory), naming
     * the largest component and what would shrink it.
     */
    public void requireFits(long deviceBytes) {
        if (total() <= deviceBytes) {
            return;
        }
        long acts = checkpointing ? activations : activationsWithout;
        String[][] parts = {
                {"weights", String.valueOf(weights), zeroStage < 3 ? "ZeRO-3 (a deepspeed file with stage 3) shards what "
                        + "trains, LoRA (finetuning_type: lora) or pure_bf16 halves or drops the float32 copies" : "LoRA "
                        + "(finetuning_type: lora) or pure_bf16: true"},
                {"gradients", String.valueOf(gradients), zeroStage < 2 ? "ZeRO-2 or 3 shards them; LoRA trains far fewer"
                        : "more ranks, or LoRA"},
                {"optimizer state", String.valueOf(optimizer), zeroStage < 1 ? "ZeRO-1, 2 or 3 shards it; LoRA, GaLore "
                        + "or Adam-mini hold less" : "more ranks, LoRA, GaLore or Adam-mini"},
                {"activations", String.valueOf(acts), (checkpointing ? "" : "activation checkpointing (remove "
                        + "disable_gradient_checkpointing), ") + "a smaller per_device_train_batch_size or cutoff_len"}};
        String[] largest = parts[0];
        for (String[] p : parts) {
            if (Long.parseLong(p[1]) > Long.parseLong(largest[1])) {
                largest = p;
            }
        }
        throw new dev.sparksft.UserError(String.format("the run needs about %.1f GB per rank but device_memory_gb is "
                        + "%.1f: the largest part is %s (%.1f GB): %s (scripts/sft estimate CONFIG shows every part)",
                total() / 1073741824.0, deviceBytes / 1073741824.0, largest[0], Long.parseLong(largest[1]) / 1073741824.0,
                largest[2]));
    }

    /** A markdown table of the components, in MB. */
    public String table() {
        StringBuilder t = new StringBuilder("| per rank (world_size " + worldSize + ", ZeRO stage " + zeroStage
                + ") | MB |\n| --- | --- |\n");
        row(t, "weights", weights);
        row(t, "gradients", gradients);
        row(t, "optimizer state", optimizer);
        row(t, "activations with checkpointing" + (checkpointing ? " (this run)" : ""), activations);
        row(t, "activations without checkpointing" + (checkpointing ? "" : " (this run)"), activationsWithout);
        row(t, "runtime (JVM, libtorch, tokenizer)", RUNTIME);
        row(t, "total", total());
        return t.toString();
    }

    private static void row(StringBuilder t, String what, long bytes) {
        t.append("| ").append(what).append(" | ").append(String.format("%,.0f", bytes / 1048576.0)).append(" |\n");
    }
}
