package dev.sparksft.model;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The Hugging Face parameter names of Qwen2-VL's and Qwen2.5-VL's vision tower, as the hub checkpoints
 * name them (a transformers-5 file's "model.visual." is mapped to "visual." where files are read and
 * written, {@link ModelLayout#storedName}):
 * <pre>
 *   visual.patch_embed.proj.weight             (width, C, T, P, P)   Conv3d, kernel = stride: a matmul per patch
 *   visual.blocks.{i}.norm1.weight             (width)   .bias (width) for Qwen2-VL's LayerNorm; norm2 likewise
 *   visual.blocks.{i}.attn.qkv.weight          (3 x width, width)    .bias (3 x width), rows q, k, v
 *   visual.blocks.{i}.attn.proj.weight         (width, width)        .bias (width)
 *   visual.blocks.{i}.mlp.fc1.weight           (intermediate, width) .bias   Qwen2-VL; fc2 (width, intermediate)
 *   visual.blocks.{i}.mlp.gate_proj.weight     (intermediate, width) .bias   Qwen2.5-VL; up_proj likewise,
 *                                                                            down_proj (width, intermediate)
 *   visual.merger.ln_q.weight                  (width)   .bias for Qwen2-VL's LayerNorm
 *   visual.merger.mlp.0.weight                 (width x merge^2, width x merge^2)  .bias
 *   visual.merger.mlp.2.weight                 (out_hidden, width x merge^2)       .bias
 * </pre>
 * The patch embedding and the blocks are the vision tower, the merger is the multi-modal projector
 * (LLaMA-Factory's split for freeze_vision_tower and freeze_multi_modal_projector, {@link ModelLayout#partOf}).
 */
public final class VisionLayout {
    /** Every vision parameter's name starts with it. */
    public static final String PREFIX = "visual.";
    /** The patch merger's parameters (the multi-modal projector) start with it. */
    public static final String MERGER = "visual.merger.";
    public static final String PATCH_EMBED = "visual.patch_embed.proj.weight";
    public static final String MERGER_NORM = "visual.merger.ln_q";
    /** The merger's two linears, around its GELU. */
    public static final String MERGER_FC1 = "visual.merger.mlp.0";
    public static final String MERGER_FC2 = "visual.merger.mlp.2";

    private VisionLayout() {}

    /** "visual.blocks.3." for block 3. */
    public static String block(int i) {
        return "visual.blocks." + i + ".";
    }

    /** The MLP linears of a block: Qwen2-VL's fc1, fc2; Qwen2.5-VL's gate_proj, up_proj, down_proj. */
    static List<String> mlpLeaves(VisionConfig v) {
        return v.windowed() ? List.of("gate_proj", "up_proj", "down_proj") : List.of("fc1", "fc2");
    }

    /** The linear modules of the vision tower's blocks ("visual.blocks.0.attn.qkv", ...), in order. */
    public static List<String> towerLinears(VisionConfig v) {
        List<String> modules = new ArrayList<>();
        for (int i = 0; i < v.depth(); i++) {
            modules.add(block(i) + "attn.qkv");
            modules.add(block(i) + "attn.proj");
            for (String leaf : mlpLeaves(v)) {
                modules.add(block(i) + "mlp." + leaf);
            }
        }
        return modules;
    }

    /** The merger's linear modules: visual.merger.mlp.0 and visual.merger.mlp.2. */
    public static List<String> mergerLinears() {
        return List.of(MERGER_FC1, MERGER_FC2);
    }

    /** The name and shape of every vision parameter of {@code v}, in the modules' order. */
    static Map<String, long[]> expectedShapes(VisionConfig v) {
        long w = v.width();
        long inter = v.intermediate();
        long merged = w * v.mergeUnit();
        boolean layerNorm = !v.windowed();
        Map<String, long[]> shapes = new LinkedHashMap<>();
        shapes.put(PATCH_EMBED, new long[] {w, v.inChannels(), v.temporalPatchSize(), v.patchSize(), v.patchSize()});
        for (int i = 0; i < v.depth(); i++) {
            String b = block(i);
            norm(shapes, b + "norm1", w, layerNorm);
            norm(shapes, b + "norm2", w, layerNorm);
            linear(shapes, b + "attn.qkv", 3 * w, w);
            linear(shapes, b + "attn.proj", w, w);
            if (v.windowed()) {
                linear(shapes, b + "mlp.gate_proj", inter, w);
                linear(shapes, b + "mlp.up_proj", inter, w);
                linear(shapes, b + "mlp.down_proj", w, inter);
            } else {
                linear(shapes, b + "mlp.fc1", inter, w);
                linear(shapes, b + "mlp.fc2", w, inter);
            }
        }
        norm(shapes, MERGER_NORM, w, layerNorm);
        linear(shapes, MERGER_FC1, merged, merged);
        linear(shapes, MERGER_FC2, v.outHidden(), merged);
        return shapes;
    }

    private static void norm(Map<String, long[]> shapes, String module, long w, boolean withBias) {
        shapes.put(module + ".weight", new long[] {w});
        if (withBias) {
            shapes.put(module + ".bias", new long[] {w});
        }
    }

    private static void linear(Map<String, long[]> shapes, String module, long out, long in) {
        shapes.put(module + ".weight", new long[] {out, in});
        shapes.put(module + ".bias", new long[] {out});
    }
}
