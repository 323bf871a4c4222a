package dev.sparksft.model;

import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * Rotary position embedding in the Hugging Face ("rotate_half") layout:
 * {@code q' = q * cos + rotate_half(q) * sin}, with {@code cos = cos(cat(f, f))} and
 * {@code f = position * inv_freq}, {@code inv_freq[i] = theta^(-2i / rotary_dim)}, optionally
 * rescaled by the {@code llama3}, {@code linear} or {@code longrope} rule. Gemma 3's sliding layers have a RoPE of
 * their own ({@link #local}): base rope_local_base_freq, never rescaled. Phi-3 turns only the
 * first rotary_dim = int(head_dim * partial_rotary_factor) dimensions of each head; others turn all.
 */
public final class RotaryEmbedding {
    /** (rotary_dim / 2) inverse frequencies, float32. */
    private final Tensor invFreq;
    /** longrope's inverse frequencies for a forward whose positions reach past original_max_position_embeddings; else null. */
    private final Tensor longInvFreq;
    private final int rotaryDim;
    private final int originalMaxPositions;
    /** longrope's scale of cos and sin (transformers' attention_scaling); 1 for the other rules. */
    private final double attentionFactor;
    /** Qwen2-VL's M-RoPE: per section its count of frequencies, section i turned by axis i % 3; null for 1-D RoPE. */
    private final int[] mropeSection;

    /** The model's (global) RoPE: rope_theta with rope_scaling over the rotary dimension (M-RoPE for Qwen2-VL). */
    public RotaryEmbedding(ModelConfig cfg) {
        this(cfg.rotaryDim(), cfg.ropeTheta(), cfg.ropeScaling(), cfg.visionLanguage() == null ? null
                : cfg.visionLanguage().mropeSection().stream().mapToInt(Integer::intValue).toArray());
    }

    private RotaryEmbedding(int rotaryDim, double theta, ModelConfig.RopeScaling scaling) {
        this(rotaryDim, theta, scaling, null);
    }

    private RotaryEmbedding(int rotaryDim, double theta, ModelConfig.RopeScaling scaling, int[] mropeSection) {
        this.mropeSection = mropeSection;
        this.rotaryDim = rotaryDim;
        boolean longRope = scaling != null && scaling.type().equals("longrope");
        this.invFreq = Tensor.create(longRope ? longRopeFrequencies(rotaryDim, theta, scaling.shortFactor().stream()
                .mapToDouble(Double::doubleValue).toArray()) : inverseFrequencies(rotaryDim, theta, scaling));
        this.longInvFreq = !longRope ? null : Tensor.create(longRopeFrequencies(rotaryDim, theta,
                scaling.longFactor().stream().mapToDouble(Double::doubleValue).toArray()));
        this.originalMaxPositions = longRope ? scaling.originalMaxPositions() : 0;
        this.attentionFactor = longRope ? scaling.attentionFactor() : 1.0;
    }

    /** The plain RoPE of base {@code theta} that Gemma 3's sliding layers use. */
    static RotaryEmbedding local(ModelConfig cfg, double theta) {
        return new RotaryEmbedding(cfg.headDim(), theta, null);
    }

    /**
     * transformers' {@code _compute_default_rope_parameters}, {@code _compute_linear_scaling_rope_parameters}
     * and {@code _compute_llama3_parameters}.
     */
    static float[] inverseFrequencies(int headDim, double theta, ModelConfig.RopeScaling s) {
        int half = headDim / 2;
        float[] inv = new float[half];
        for (int i = 0; i < half; i++) {
            double f = 1.0 / Math.pow(theta, (2.0 * i) / headDim);
            if (s != null && s.type().equals("linear")) {
                f = f / s.factor();
            } else if (s != null) {
                double lowWavelen = s.originalMaxPositions() / s.lowFreqFactor();
                double highWavelen = s.originalMaxPositions() / s.highFreqFactor();
                double wavelen = 2 * Math.PI / f;
                if (wavelen > lowWavelen) {
                    f = f / s.factor(); // long wavelengths: interpolate fully
                } else if (wavelen >= highWavelen) { // the band between: blend smoothly
                    double smooth = (s.originalMaxPositions() / wavelen - s.lowFreqFactor())
                            / (s.highFreqFactor() - s.lowFreqFactor());
                    f = (1 - smooth) * f / s.factor() + smooth * f;
                }
            }
            inv[i] = (float) f;
        }
        return inv;
    }

    /** transformers' {@code _compute_longrope_parameters}: inv_freq[i] = 1 / (ext[i] * theta^(2i / rotary_dim)). */
    static float[] longRopeFrequencies(int rotaryDim, double theta, double[] ext) {
        float[] inv = new float[rotaryDim / 2];
        for (int i = 0; i < inv.length; i++) {
            inv[i] = (float) (1.0 / (ext[i] * Math.pow(theta, (2.0 * i) / rotaryDim)));
        }
        return inv;
    }

    /**
     * cos and sin for {@code positionIds} (batch, seq): each (batch, 1, seq, rotary_dim), float32.
     * longrope switches to the long factors when the call's largest position + 1 exceeds
     * original_max_position_embeddings, per call as transformers' dynamic update does (so in KV-cache
     * generation the keys already cached keep the factors they were turned with).
     */
    public Tensor[] cosSin(Tensor positionIds) {
        if (positionIds.dim() == 3) {
            return multimodalCosSin(positionIds);
        }
        Tensor inv = longInvFreq != null && positionIds.max().item_long() + 1 > originalMaxPositions ? longInvFreq : invFreq;
        Tensor freqs = positionIds.to(ScalarType.Float).unsqueeze(-1).mul(inv.to(positionIds.device(), ScalarType.Float));
        Tensor emb = torch.cat(new TensorVector(freqs, freqs), -1).unsqueeze(1); // (batch, 1, seq, rotary_dim)
        if (attentionFactor == 1.0) {
            return new Tensor[] {emb.cos(), emb.sin()};
        }
        Scalar scale = new Scalar(attentionFactor);
        return new Tensor[] {emb.cos().mul(scale), emb.sin().mul(scale)};
    }

    /**
     * M-RoPE (Qwen2-VL's rotary embedding and apply_multimodal_rotary_pos_emb): positions (3, batch, seq) of
     * time, height and width give three sets of angles (3, batch, seq, head_dim / 2); the frequencies are split
     * into mrope_section's runs, run i taking axis i % 3's angles; cos and sin of cat(angles, angles), each
     * (batch, 1, seq, head_dim). Three equal axes give 1-D RoPE's values.
     */
    private Tensor[] multimodalCosSin(Tensor positionIds) {
        if (mropeSection == null || positionIds.size(0) != 3) {
            throw new IllegalArgumentException("position ids of shape " + java.util.Arrays.toString(positionIds.sizes().vec().get())
                    + ": (3, batch, seq) M-RoPE positions are for a Qwen2-VL model; this model takes (batch, seq)");
        }
        Tensor freqs = positionIds.to(ScalarType.Float).unsqueeze(-1)
                .mul(invFreq.to(positionIds.device(), ScalarType.Float));   // (3, batch, seq, head_dim / 2)
        TensorVector runs = new TensorVector();
        long start = 0;
        for (int i = 0; i < mropeSection.length; i++) {
            runs.push_back(freqs.select(0, i % 3).narrow(-1, start, mropeSection[i]));
            start += mropeSection[i];
        }
        Tensor f = torch.cat(runs, -1);                                      // (batch, seq, head_dim / 2)
        Tensor emb = torch.cat(new TensorVector(f, f), -1).unsqueeze(1);     // (batch, 1, seq, head_dim)
        return new Tensor[] {emb.cos(), emb.sin()};
    }

    /** rotate_half: (x1, x2) -> (-x2, x1) over the halves of the last dimension. */
    static Tensor rotateHalf(Tensor x) {
        long half = x.size(-1) / 2;
        return torch.cat(new TensorVector(x.narrow(-1, half, half).neg(), x.narrow(-1, 0, half)), -1);
    }

    /** x (batch, heads, seq, head_dim) with its first rotary_dim dimensions rotated by the position angles. */
    public Tensor apply(Tensor x, Tensor cos, Tensor sin) {
        long headDim = x.size(-1);
        Tensor turned = rotaryDim == headDim ? x : x.narrow(-1, 0, rotaryDim);
        int half = rotaryDim / 2;
        Tensor x1 = turned.narrow(-1, 0, half);
        Tensor x2 = turned.narrow(-1, half, half);
        Tensor rotated = torch.cat(new TensorVector(x2.neg(), x1), -1); // rotate_half(x)
        if (cos.scalar_type().value != x.scalar_type().value) {   // bf16: HF casts cos/sin to x's dtype
            cos = cos.to(x.scalar_type());
            sin = sin.to(x.scalar_type());
        }
        Tensor y = turned.mul(cos).add(rotated.mul(sin));
        return rotaryDim == headDim ? y : torch.cat(new TensorVector(y, x.narrow(-1, rotaryDim, headDim - rotaryDim)), -1);
    }
}
