package dev.sparksft.model;

import dev.sparksft.UserError;
import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.List;

/**
 * The vision tower of Qwen2-VL and Qwen2.5-VL, read from config.json's {@code vision_config} (the keys of
 * transformers' Qwen2VLVisionConfig and Qwen2_5_VLVisionConfig, with their defaults; the hub's {@code in_chans}
 * for in_channels). The two differ in their keys:
 * <pre>
 *   qwen2_vl    embed_dim (the tower's width), hidden_size (the merger's output = the LM's hidden_size),
 *               mlp_ratio (fc1 width = int(embed_dim * mlp_ratio)), hidden_act quick_gelu
 *   qwen2_5_vl  hidden_size (the tower's width), out_hidden_size (the merger's output), intermediate_size,
 *               hidden_act silu, window_size (pixels), fullatt_block_indexes
 * </pre>
 *
 * @param windowed            Qwen2.5-VL: RMSNorm, SwiGLU, window attention; false: Qwen2-VL's LayerNorm, quick_gelu
 * @param width               the blocks' hidden width
 * @param intermediate        the MLP's inner width
 * @param outHidden           the merger's output width, the language model's hidden_size
 * @param windowSize          Qwen2.5-VL's attention window side in pixels (a multiple of patch x merge); 0 for Qwen2-VL
 * @param fullAttentionBlocks Qwen2.5-VL's blocks that attend over the whole image; empty for Qwen2-VL (all do)
 * @param ropeTheta           the base of the 2-D vision rotary embedding (rope_parameters.rope_theta, 10000)
 */
public record VisionConfig(boolean windowed, int depth, int width, int numHeads, int intermediate, int inChannels,
                           int patchSize, int temporalPatchSize, int mergeSize, int outHidden, int windowSize,
                           List<Integer> fullAttentionBlocks, double ropeTheta) {

    public VisionConfig {
        fullAttentionBlocks = List.copyOf(fullAttentionBlocks);
    }

    /** The head width: width / num_heads. */
    public int headDim() {
        return width / numHeads;
    }

    /** One flattened patch of pixel_values: in_channels x temporal_patch_size x patch_size x patch_size values. */
    public int patchValues() {
        return inChannels * temporalPatchSize * patchSize * patchSize;
    }

    /** Patches merged into one language-model token: spatial_merge_size^2. */
    public int mergeUnit() {
        return mergeSize * mergeSize;
    }

    /** Whether block {@code i} attends over whole images (every Qwen2-VL block; Qwen2.5-VL's fullatt_block_indexes). */
    public boolean fullAttention(int block) {
        return !windowed || fullAttentionBlocks.contains(block);
    }

    /**
     * {@code vision} (config.json's vision_config) of a {@code arch} model whose language model is
     * {@code textHidden} wide; every problem named by its key under vision_config.
     */
    static VisionConfig read(Architecture arch, JsonNode vision, int textHidden, String source) {
        if (vision == null || !vision.isObject()) {
            throw new UserError(source + ": a " + arch.modelType + " config.json needs a 'vision_config' object (the "
                    + "vision tower's depth, widths, patch and merge sizes); got " + vision + ". Use the config.json of "
                    + "the checkpoint, which has it");
        }
        boolean windowed = arch == Architecture.QWEN2_5_VL;
        List<String> problems = new ArrayList<>();
        String act = vision.path("hidden_act").asText(windowed ? "silu" : "quick_gelu");
        if (!act.equals(windowed ? "silu" : "quick_gelu")) {
            problems.add("vision_config.hidden_act '" + act + "' is not supported for " + arch.modelType + " (only "
                    + (windowed ? "silu" : "quick_gelu") + ")");
        }
        int depth = positive(vision, "depth", 32, problems);
        int width = windowed ? positive(vision, "hidden_size", 3584, problems) : positive(vision, "embed_dim", 1280, problems);
        int heads = positive(vision, "num_heads", 16, problems);
        int inter = windowed ? positive(vision, "intermediate_size", 3420, problems)
                : (int) (width * vision.path("mlp_ratio").asDouble(4));
        int channels = positive(vision, vision.has("in_channels") ? "in_channels" : "in_chans", 3, problems);
        int patch = positive(vision, "patch_size", 14, problems);
        int temporal = positive(vision, "temporal_patch_size", 2, problems);
        int merge = positive(vision, "spatial_merge_size", 2, problems);
        String outKey = windowed ? "out_hidden_size" : "hidden_size";
        int out = positive(vision, outKey, 3584, problems);
        int window = windowed ? positive(vision, "window_size", 112, problems) : 0;
        List<Integer> full = new ArrayList<>();
        if (windowed) {
            JsonNode idx = vision.get("fullatt_block_indexes");
            if (idx == null || idx.isNull()) {
                full.addAll(List.of(7, 15, 23, 31));                   // Qwen2_5_VLVisionConfig's default
            } else if (!idx.isArray()) {
                problems.add("vision_config.fullatt_block_indexes must be a list of block indexes, got " + idx);
            } else {
                idx.forEach(n -> full.add(n.asInt()));
            }
            if (full.stream().anyMatch(i -> i < 0 || i >= depth)) {
                problems.add("vision_config.fullatt_block_indexes " + full + " names blocks outside 0.." + (depth - 1)
                        + " (depth " + depth + ")");
            }
            if (window > 0 && patch > 0 && merge > 0 && window % (patch * merge) != 0) {
                problems.add("vision_config.window_size (" + window + ") must be a multiple of patch_size x "
                        + "spatial_merge_size (" + patch * merge + ")");
            }
        }
        if (heads > 0 && width % heads != 0) {
            problems.add("vision_config." + (windowed ? "hidden_size" : "embed_dim") + " (" + width + ") must be a "
                    + "multiple of num_heads (" + heads + ")");
        } else if (heads > 0 && (width / heads) % 4 != 0) {
            problems.add("the vision head width " + (width / heads) + " must be a multiple of 4 (a height and a width "
                    + "half, each rotated in pairs)");
        }
        if (inter <= 0) {
            problems.add("vision_config." + (windowed ? "intermediate_size" : "mlp_ratio") + " gives an MLP width of " + inter);
        }
        if (out != textHidden) {
            problems.add("vision_config." + outKey + " (" + out + ", the merger's output) must equal the language "
                    + "model's hidden_size (" + textHidden + ")");
        }
        double theta = vision.path("rope_parameters").path("rope_theta").asDouble(10000.0);
        if (!problems.isEmpty()) {
            throw new UserError(source + ": " + String.join("; ", problems));
        }
        return new VisionConfig(windowed, depth, width, heads, inter, channels, patch, temporal, merge, out, window,
                full, theta);
    }

    private static int positive(JsonNode c, String key, int absent, List<String> problems) {
        if (!c.has(key) || c.get(key).isNull()) {
            return absent;
        }
        JsonNode v = c.get(key);
        if (!v.canConvertToInt() || v.asInt() <= 0) {
            problems.add("vision_config." + key + " must be a positive integer, got " + v);
            return 1;
        }
        return v.asInt();
    }
}
