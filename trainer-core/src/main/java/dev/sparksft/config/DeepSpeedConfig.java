package dev.sparksft.config;

import dev.sparksft.JsonFiles;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sparksft.UserError;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What spark-sft takes from a DeepSpeed JSON ({@code deepspeed: path}, as Hugging Face and
 * LLaMA-Factory pass it): the ZeRO stage (0 to 3) and whether the optimizer or the parameters are
 * offloaded to the host. The batch, clipping and precision fields must be "auto" or agree with our own keys, which
 * stay the one source of those values; tuning fields that only shape DeepSpeed's own buffers are
 * accepted without effect (logged once); anything else we cannot honour is refused by name.
 */
public record DeepSpeedConfig(Path file, int stage, boolean offloadOptimizer, boolean offloadParam) {
    private static final Logger LOG = LoggerFactory.getLogger(DeepSpeedConfig.class);
    private static final ObjectMapper JSON = new ObjectMapper();

    /** Top-level fields that change nothing here. */
    private static final Set<String> NO_EFFECT = Set.of("zero_allow_untested_optimizer", "steps_per_print",
            "wall_clock_breakdown");
    /** zero_optimization fields that size or schedule DeepSpeed's own buffers: no counterpart here. */
    private static final Set<String> ZERO_TUNING = Set.of("allgather_partitions", "allgather_bucket_size",
            "overlap_comm", "reduce_scatter", "reduce_bucket_size", "contiguous_gradients", "round_robin_gradients",
            "sub_group_size");
    /** fp16 loss-scaling fields, without effect while fp16 is off (the only way spark-sft runs). */
    private static final Set<String> LOSS_SCALE = Set.of("loss_scale", "loss_scale_window", "initial_scale_power",
            "hysteresis", "min_loss_scale", "consecutive_hysteresis", "auto_cast");

    /**
     * Reads and checks {@code file} against the run's own keys.
     *
     * @param worldSize the number of ranks (train_batch_size = micro batch x accumulation x ranks)
     */
    public static DeepSpeedConfig load(Path file, TrainingArguments args, int worldSize) {
        JsonNode root;
        try {
            root = JSON.readTree(Files.readString(file));
        } catch (NoSuchFileException e) {
            throw new UserError("deepspeed: " + file + " does not exist; give the path of a DeepSpeed JSON file "
                    + "(on a cluster: a path every executor sees)");
        } catch (JsonProcessingException e) {
            throw new UserError("deepspeed: " + JsonFiles.malformed(file.toString(), e).getMessage());
        } catch (IOException e) {
            throw new UserError("deepspeed: cannot read " + file + " (" + e.getClass().getSimpleName() + ": "
                    + e.getMessage() + "); give a DeepSpeed JSON file this process can read (on a cluster: a path "
                    + "every executor sees)");
        }
        if (root == null || !root.isObject()) {
            throw new UserError("deepspeed: " + file + " must hold a JSON object, like LLaMA-Factory's ds_z2_config.json");
        }
        JsonNode zero = root.path("zero_optimization");
        int stage = stage(file, zero);
        List<String> problems = new ArrayList<>();
        Set<String> ignored = new TreeSet<>();
        String where = "deepspeed (" + file + "): ";
        for (Iterator<Map.Entry<String, JsonNode>> it = root.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> f = it.next();
            String key = f.getKey();
            JsonNode v = f.getValue();
            switch (key) {
                case "train_micro_batch_size_per_gpu" -> agree(problems, where, key, v, args.perDeviceTrainBatchSize(),
                        "per_device_train_batch_size");
                case "gradient_accumulation_steps" -> agree(problems, where, key, v, args.gradientAccumulationSteps(),
                        "gradient_accumulation_steps");
                case "train_batch_size" -> agree(problems, where, key, v, args.perRankBatch() * worldSize,
                        "per_device_train_batch_size x gradient_accumulation_steps x world_size");
                case "gradient_clipping" -> {
                    if (!isAuto(v) && !(v.isNumber() && v.asDouble() == args.maxGradNorm())) {
                        problems.add(where + key + " is " + v + " but max_grad_norm is " + args.maxGradNorm()
                                + "; set " + key + " to \"auto\" (or " + args.maxGradNorm() + ")");
                    }
                }
                case "fp16" -> fp16(problems, where, v, ignored);
                case "bf16" -> bf16(problems, where, v, args.bf16());
                case "zero_optimization" -> zero(problems, where, v, stage, ignored);
                default -> {
                    if (NO_EFFECT.contains(key) || key.startsWith("_")) {   // "_comment": JSON has no comments
                        ignored.add(key);
                    } else {
                        problems.add(where + key + " is not supported by spark-sft (it trains with ZeRO stages 0-3 "
                                + "over its own optimizers and keys); remove " + key);
                    }
                }
            }
        }
        ConfigProblems.throwIfAny(problems);
        boolean offload = zero.path("offload_optimizer").path("device").asText("none").equals("cpu");
        boolean offloadParam = zero.path("offload_param").path("device").asText("none").equals("cpu");
        if (!ignored.isEmpty()) {
            LOG.info("deepspeed: {} have no effect in spark-sft (they tune DeepSpeed's own buffers, logging or fp16)",
                    ignored);
        }
        LOG.info("deepspeed: ZeRO stage {}{}{} from {}", stage, offload ? ", optimizer offloaded to the host" : "",
                offloadParam ? ", parameters offloaded to the host" : "", file);
        return new DeepSpeedConfig(file, stage, offload, offloadParam);
    }

    /** zero_optimization.stage: 0 when absent. */
    private static int stage(Path file, JsonNode zero) {
        if (!zero.isMissingNode() && !zero.isObject()) {
            throw new UserError("deepspeed (" + file + "): zero_optimization must be an object, got " + zero);
        }
        JsonNode s = zero.path("stage");
        if (s.isMissingNode()) {
            return 0;
        }
        if (!s.isIntegralNumber() || s.asInt() < 0 || s.asInt() > 3) {
            throw new UserError("deepspeed (" + file + "): zero_optimization.stage must be 0, 1, 2 or 3, got " + s);
        }
        return s.asInt();
    }

    private static boolean isAuto(JsonNode v) {
        return v.isTextual() && v.asText().equals("auto");
    }

    private static void agree(List<String> problems, String where, String key, JsonNode v, int ours, String ourKeys) {
        if (!isAuto(v) && !(v.isIntegralNumber() && v.asLong() == ours)) {
            problems.add(where + key + " is " + v + " but " + ourKeys + " gives " + ours + "; set " + key
                    + " to \"auto\" (or " + ours + "), or change " + ourKeys);
        }
    }

    private static void fp16(List<String> problems, String where, JsonNode fp16, Set<String> ignored) {
        if (!fp16.isObject()) {
            problems.add(where + "fp16 must be an object like {\"enabled\": \"auto\"}, got " + fp16);
            return;
        }
        for (Iterator<Map.Entry<String, JsonNode>> it = fp16.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> f = it.next();
            if (f.getKey().equals("enabled")) {
                if (f.getValue().asBoolean(false) || !isAuto(f.getValue()) && !f.getValue().isBoolean()) {
                    problems.add(where + "fp16.enabled is " + f.getValue() + ", but spark-sft trains in float32 or "
                            + "bfloat16 only; set fp16.enabled to false or \"auto\" (and bf16: true for bfloat16)");
                }
            } else if (LOSS_SCALE.contains(f.getKey())) {
                ignored.add("fp16." + f.getKey());
            } else {
                problems.add(where + "fp16." + f.getKey() + " is not supported; remove it");
            }
        }
    }

    private static void bf16(List<String> problems, String where, JsonNode bf16, boolean ours) {
        if (!bf16.isObject()) {
            problems.add(where + "bf16 must be an object like {\"enabled\": \"auto\"}, got " + bf16);
            return;
        }
        for (Iterator<Map.Entry<String, JsonNode>> it = bf16.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> f = it.next();
            JsonNode v = f.getValue();
            if (!f.getKey().equals("enabled")) {
                problems.add(where + "bf16." + f.getKey() + " is not supported; remove it");
            } else if (!isAuto(v) && !(v.isBoolean() && v.asBoolean() == ours)) {
                problems.add(where + "bf16.enabled is " + v + " but bf16 is " + ours + "; set bf16.enabled to "
                        + "\"auto\" (or " + ours + "), or set bf16: " + v);
            }
        }
    }

    private static void zero(List<String> problems, String where, JsonNode zero, int stage, Set<String> ignored) {
        for (Iterator<Map.Entry<String, JsonNode>> it = zero.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> f = it.next();
            String key = f.getKey();
            JsonNode v = f.getValue();
            if (key.equals("stage")) {
                continue;
            }
            if (key.equals("offload_optimizer")) {
                String device = v.path("device").asText("none");
                if (!device.equals("cpu") && !device.equals("none")) {
                    problems.add(where + "zero_optimization.offload_optimizer.device is '" + device
                            + "'; spark-sft offloads to cpu (or none) only");
                }
                v.fieldNames().forEachRemaining(k -> {
                    if (k.equals("pin_memory") || k.equals("buffer_count") || k.equals("fast_init")) {
                        ignored.add("zero_optimization.offload_optimizer." + k);
                    } else if (!k.equals("device")) {
                        problems.add(where + "zero_optimization.offload_optimizer." + k + " is not supported; remove it");
                    }
                });
            } else if (key.equals("offload_param")) {
                String device = v.path("device").asText("none");
                if (stage != 3 && !device.equals("none")) {
                    problems.add(where + "zero_optimization.offload_param offloads parameters, which only ZeRO stage 3 "
                            + "does; this file asks for stage " + stage + ": remove offload_param");
                } else if (!device.equals("cpu") && !device.equals("none")) {
                    problems.add(where + "zero_optimization.offload_param.device is '" + device
                            + "'; spark-sft offloads to cpu (or none) only");
                }
                v.fieldNames().forEachRemaining(k -> {
                    if (k.equals("pin_memory") || k.equals("buffer_count") || k.equals("buffer_size")
                            || k.equals("max_in_cpu")) {
                        ignored.add("zero_optimization.offload_param." + k);
                    } else if (!k.equals("device")) {
                        problems.add(where + "zero_optimization.offload_param." + k + " is not supported; remove it");
                    }
                });
            } else if (ZERO_TUNING.contains(key) || key.startsWith("stage3_")) {
                ignored.add("zero_optimization." + key);
            } else {
                problems.add(where + "zero_optimization." + key + " is not supported by spark-sft; remove it");
            }
        }
    }
}
