package dev.sparksft.model;

import dev.sparksft.image.VisionInputs;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;
import org.bytedeco.pytorch.DoubleOptional;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * The vision tower of Qwen2-VL (Qwen2VisionTransformerPretrainedModel) and Qwen2.5-VL
 * (Qwen2_5_VisionTransformerPretrainedModel): pixel patches to image features in the language model's width.
 * <pre>
 *   x = patch_embed(pixel_values)                       Conv3d with kernel = stride = (T, P, P): one matmul per patch
 *   cos, sin = 2-D rotary of each patch's (row, column)  head_dim/4 frequencies for the row, as many for the column
 *   [Qwen2.5] x, cos, sin reordered into windows         (WindowIndex)
 *   for each block:  x = x + attn(norm1(x))              attention within each image (frame), or within each
 *                    x = x + mlp(norm2(x))               window on Qwen2.5's blocks off fullatt_block_indexes
 *   y = merger(x)                                        norm, merge^2 neighbours concatenated, Linear-GELU-Linear
 *   [Qwen2.5] y back in the processor's order
 * </pre>
 * Qwen2-VL's norms are LayerNorms and its MLP fc2(quick_gelu(fc1(x))); Qwen2.5-VL's are RMSNorms and a SwiGLU
 * down(silu(gate(x)) * up(x)) with biases. Norm eps 1e-6 throughout. The parameters are {@link ModelWeights}'
 * under {@link VisionLayout}'s names; the linears are {@link CausalLm.Proj}s, so an adapter applies where one is set.
 */
public final class VisionTower {
    private static final double EPS = 1e-6;

    private final VisionConfig cfg;
    private final Tensor patchEmbed;      // (width, C, T, P, P)
    private final List<Block> blocks;
    private final Tensor mergerNorm;      // (width)
    private final Tensor mergerNormBias;  // (width), null for RMSNorm
    private final CausalLm.Proj mergerFc1; // (width x merge^2) -> (width x merge^2)
    private final CausalLm.Proj mergerFc2; // (width x merge^2) -> out_hidden
    private final Tensor invFreq;         // (head_dim / 4) float32: theta^(-2i / (head_dim / 2))

    /** One block; Qwen2-VL's has fc1/fc2 and norm biases, Qwen2.5-VL's gate/up/down and no norm biases. */
    private record Block(Tensor norm1, Tensor norm1Bias, CausalLm.Proj qkv, CausalLm.Proj proj, Tensor norm2,
                         Tensor norm2Bias, CausalLm.Proj fc1, CausalLm.Proj fc2, CausalLm.Proj gate, CausalLm.Proj up,
                         CausalLm.Proj down) {}

    /** The tower of {@code cfg} over {@code weights}; {@code linear} gives the linear module of a name (with its bias). */
    VisionTower(VisionConfig cfg, ModelWeights weights, Function<String, CausalLm.Proj> linear) {
        this.cfg = cfg;
        boolean layerNorm = !cfg.windowed();
        this.patchEmbed = weights.get(VisionLayout.PATCH_EMBED);
        this.blocks = new ArrayList<>();
        for (int i = 0; i < cfg.depth(); i++) {
            String b = VisionLayout.block(i);
            boolean swiglu = cfg.windowed();
            blocks.add(new Block(weights.get(b + "norm1.weight"), layerNorm ? weights.get(b + "norm1.bias") : null,
                    linear.apply(b + "attn.qkv"), linear.apply(b + "attn.proj"),
                    weights.get(b + "norm2.weight"), layerNorm ? weights.get(b + "norm2.bias") : null,
                    swiglu ? null : linear.apply(b + "mlp.fc1"), swiglu ? null : linear.apply(b + "mlp.fc2"),
                    swiglu ? linear.apply(b + "mlp.gate_proj") : null, swiglu ? linear.apply(b + "mlp.up_proj") : null,
                    swiglu ? linear.apply(b + "mlp.down_proj") : null));
        }
        this.mergerNorm = weights.get(VisionLayout.MERGER_NORM + ".weight");
        this.mergerNormBias = layerNorm ? weights.get(VisionLayout.MERGER_NORM + ".bias") : null;
        this.mergerFc1 = linear.apply(VisionLayout.MERGER_FC1);
        this.mergerFc2 = linear.apply(VisionLayout.MERGER_FC2);
        int spatial = cfg.headDim() / 2;
        float[] inv = new float[spatial / 2];
        for (int i = 0; i < inv.length; i++) {
            inv[i] = (float) (1.0 / Math.pow(cfg.ropeTheta(), (2.0 * i) / spatial));
        }
        this.invFreq = Tensor.create(inv);
    }

    public VisionConfig config() {
        return cfg;
    }

    /**
     * The image features of {@code images}: (image tokens of all images, out_hidden), image i's
     * t x h x w / merge^2 rows after image i-1's, in the order its image tokens stand in input_ids.
     */
    public Tensor forward(VisionInputs images) {
        int[][] grids = images.gridThw();
        checkGrids(images);
        Tensor weight = patchEmbed.reshape(patchEmbed.size(0), -1);          // (width, C*T*P*P)
        Tensor x = torch.linear(images.pixelValues().to(weight.device(), weight.scalar_type()), weight); // (patches, width)
        Tensor[] cosSin = rotary(grids, x.device());                          // (patches, head_dim) each
        Tensor cos = cosSin[0];
        Tensor sin = cosSin[1];
        int[] imageSegments = frameSegments(grids);                           // cu_seqlens: one per image frame
        WindowIndex windows = cfg.windowed() ? WindowIndex.of(grids, cfg) : null;
        if (windows != null) {
            x = windows.reorder(x, cfg.mergeUnit());
            cos = windows.reorder(cos, cfg.mergeUnit());
            sin = windows.reorder(sin, cfg.mergeUnit());
        }
        for (int i = 0; i < blocks.size(); i++) {
            Block b = blocks.get(i);
            int[] segments = cfg.fullAttention(i) ? imageSegments : windows.cuSeqlens();
            x = x.add(attention(b, norm(x, b.norm1(), b.norm1Bias()), cos, sin, segments));
            x = x.add(mlp(b, norm(x, b.norm2(), b.norm2Bias())));
        }
        Tensor merged = merger(x);                                            // (patches / merge^2, out_hidden)
        return windows == null ? merged : windows.restore(merged);
    }

    /** Every grid's h and w divisible by spatial_merge_size, and pixel_values' rows C*T*P*P wide. */
    private void checkGrids(VisionInputs images) {
        for (int i = 0; i < images.numImages(); i++) {
            int[] g = images.grid(i);
            if (g[1] % cfg.mergeSize() != 0 || g[2] % cfg.mergeSize() != 0) {
                throw new IllegalArgumentException("image_grid_thw[" + i + "] " + java.util.Arrays.toString(g)
                        + ": h and w must be multiples of spatial_merge_size " + cfg.mergeSize());
            }
        }
        if (images.pixelValues().size(1) != cfg.patchValues()) {
            throw new IllegalArgumentException("pixel_values rows have " + images.pixelValues().size(1) + " values but "
                    + "a patch of this model has in_channels x temporal_patch_size x patch_size^2 = " + cfg.patchValues());
        }
    }

    /**
     * attn: qkv(h) split into heads, the 2-D rotary on q and k (in float32, as transformers'
     * apply_rotary_pos_emb_vision), softmax(q k^T / sqrt(head_dim)) v within each segment, proj.
     */
    private Tensor attention(Block b, Tensor h, Tensor cos, Tensor sin, int[] segments) {
        long n = h.size(0);
        int heads = cfg.numHeads();
        int hd = cfg.headDim();
        Tensor qkv = b.qkv().apply(h).reshape(n, 3, heads, hd).permute(1, 0, 2, 3);   // (3, patches, heads, head_dim)
        Tensor c = cos.unsqueeze(-2);                                       // (patches, 1, head_dim)
        Tensor s = sin.unsqueeze(-2);
        Tensor q = rotate(qkv.select(0, 0), c, s).transpose(0, 1).unsqueeze(0);  // (1, heads, patches, head_dim)
        Tensor k = rotate(qkv.select(0, 1), c, s).transpose(0, 1).unsqueeze(0);
        Tensor v = qkv.select(0, 2).transpose(0, 1).unsqueeze(0);
        TensorVector outs = new TensorVector();
        for (int i = 0; i + 1 < segments.length; i++) {                     // each image (frame) or window alone
            long start = segments[i];
            long len = segments[i + 1] - segments[i];
            outs.push_back(torch.scaled_dot_product_attention(q.narrow(2, start, len), k.narrow(2, start, len),
                    v.narrow(2, start, len), new TensorOptional(), 0.0, false, new DoubleOptional(), false));
        }
        Tensor y = torch.cat(outs, 2);                                      // (1, heads, patches, head_dim)
        return b.proj().apply(y.squeeze(0).transpose(0, 1).reshape(n, (long) heads * hd));
    }

    /** x * cos + rotate_half(x) * sin in float32, back in x's dtype. */
    private static Tensor rotate(Tensor x, Tensor cos, Tensor sin) {
        Tensor f = x.to(ScalarType.Float);
        return f.mul(cos).add(RotaryEmbedding.rotateHalf(f).mul(sin)).to(x.scalar_type());
    }

    /** Qwen2-VL: fc2(quick_gelu(fc1(h))), quick_gelu(x) = x * sigmoid(1.702 x); Qwen2.5-VL: down(silu(gate(h)) * up(h)). */
    private Tensor mlp(Block b, Tensor h) {
        if (b.fc1() != null) {
            Tensor a = b.fc1().apply(h);
            return b.fc2().apply(a.mul(torch.sigmoid(a.mul(new Scalar(1.702)))));
        }
        return b.down().apply(torch.silu(b.gate().apply(h)).mul(b.up().apply(h)));
    }

    /** merger: mlp(ln_q(x).view(-1, width x merge^2)), mlp = Linear, GELU (erf), Linear. */
    private Tensor merger(Tensor x) {
        Tensor h = norm(x, mergerNorm, mergerNormBias).reshape(-1, (long) cfg.width() * cfg.mergeUnit());
        return mergerFc2.apply(torch.gelu(mergerFc1.apply(h)));
    }

    /** LayerNorm (with {@code bias}) or, when bias is null, RMSNorm (Qwen2.5-VL's, in float32) over the last dimension. */
    private static Tensor norm(Tensor x, Tensor weight, Tensor bias) {
        long[] shape = {x.size(-1)};
        if (bias != null) {
            return torch.layer_norm(x, shape, new TensorOptional(weight), new TensorOptional(bias), EPS, true);
        }
        Tensor y = torch.rms_norm(x.to(ScalarType.Float), shape, new TensorOptional(), new DoubleOptional(EPS));
        return y.to(x.scalar_type()).mul(weight);                           // weight * normed.to(input dtype)
    }

    /**
     * The rotary cos and sin of every patch, (patches, head_dim) float32: angles (row x f, column x f) for the
     * head_dim / 4 frequencies f, concatenated and repeated (transformers' recomposition of the axial rope).
     */
    private Tensor[] rotary(int[][] grids, org.bytedeco.pytorch.Device device) {
        long[] rowCol = patchPositions(grids, cfg.mergeSize());              // (patches, 2): row, column
        Tensor pos = Tensor.create(rowCol, rowCol.length / 2, 2).to(device, ScalarType.Float);
        Tensor freqs = pos.unsqueeze(-1).mul(invFreq.to(device, ScalarType.Float));   // (patches, 2, head_dim / 4)
        Tensor hw = torch.cat(new TensorVector(freqs.select(1, 0), freqs.select(1, 1)), -1);  // (patches, head_dim / 2)
        Tensor emb = torch.cat(new TensorVector(hw, hw), -1);                // (patches, head_dim)
        return new Tensor[] {emb.cos(), emb.sin()};
    }

    /**
     * Each patch's (row, column) in its image, flat (patches x 2), in the processor's order: merge x merge
     * blocks row-major, patches row-major within a block, every frame the same (get_vision_position_ids).
     */
    static long[] patchPositions(int[][] grids, int merge) {
        long total = 0;
        for (int[] g : grids) {
            total += (long) g[0] * g[1] * g[2];
        }
        long[] out = new long[(int) (2 * total)];
        int k = 0;
        for (int[] g : grids) {
            for (int f = 0; f < g[0]; f++) {
                for (int bh = 0; bh < g[1] / merge; bh++) {
                    for (int bw = 0; bw < g[2] / merge; bw++) {
                        for (int i = 0; i < merge; i++) {
                            for (int j = 0; j < merge; j++) {
                                out[k++] = (long) bh * merge + i;
                                out[k++] = (long) bw * merge + j;
                            }
                        }
                    }
                }
            }
        }
        return out;
    }

    /** cu_seqlens: the patches of each frame of each image, cumulative, 0 first. */
    static int[] frameSegments(int[][] grids) {
        List<Integer> cu = new ArrayList<>(List.of(0));
        for (int[] g : grids) {
            for (int f = 0; f < g[0]; f++) {
                cu.add(cu.get(cu.size() - 1) + g[1] * g[2]);
            }
        }
        return cu.stream().mapToInt(Integer::intValue).toArray();
    }

    /** Whether any of the tower's parameters (the merger's included, adapters too) trains now. */
    boolean trains() {
        if (patchEmbed.requires_grad() || mergerNorm.requires_grad() || mergerNormBias != null && mergerNormBias.requires_grad()
                || trains(mergerFc1) || trains(mergerFc2)) {
            return true;
        }
        for (Block b : blocks) {
            for (Tensor t : new Tensor[] {b.norm1(), b.norm1Bias(), b.norm2(), b.norm2Bias()}) {
                if (t != null && t.requires_grad()) {
                    return true;
                }
            }
            for (CausalLm.Proj p : new CausalLm.Proj[] {b.qkv(), b.proj(), b.fc1(), b.fc2(), b.gate(), b.up(), b.down()}) {
                if (trains(p)) {
                    return true;
                }
            }
        }
        return false;
    }

    private static boolean trains(CausalLm.Proj p) {
        return p != null && p.trains();
    }
}
