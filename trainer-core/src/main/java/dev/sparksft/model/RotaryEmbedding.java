package dev.sparksft.model;

import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * Rotary position embedding in the Hugging Face ("rotate_half") layout:
 * {@code q' = q * cos + rotate_half(q) * sin}, with {@code cos = cos(cat(f, f))} and
 * {@code f = position * inv_freq}, {@code inv_freq[i] = theta^(-2i / head_dim)}, optionally
 * rescaled by the {@code llama3} or {@code linear} rule. Gemma 3's sliding layers have a RoPE of
 * their own ({@link #local}): base rope_local_base_freq, never rescaled.
 */
public final class RotaryEmbedding {
    /** (head_dim / 2) inverse frequencies, float32. */
    private final Tensor invFreq;
    private final int headDim;

    /** The model's (global) RoPE: rope_theta with rope_scaling. */
    public RotaryEmbedding(ModelConfig cfg) {
        this(cfg.headDim(), cfg.ropeTheta(), cfg.ropeScaling());
    }

    private RotaryEmbedding(int headDim, double theta, ModelConfig.RopeScaling scaling) {
        this.headDim = headDim;
        this.invFreq = Tensor.create(inverseFrequencies(headDim, theta, scaling));
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

    /** cos and sin for {@code positionIds} (batch, seq): each (batch, 1, seq, head_dim), float32. */
    public Tensor[] cosSin(Tensor positionIds) {
        Tensor freqs = positionIds.to(ScalarType.Float).unsqueeze(-1).mul(invFreq.to(positionIds.device(), ScalarType.Float));
        Tensor emb = torch.cat(new TensorVector(freqs, freqs), -1).unsqueeze(1); // (batch, 1, seq, head_dim)
        return new Tensor[] {emb.cos(), emb.sin()};
    }

    /** x (batch, heads, seq, head_dim) rotated by the position angles. */
    public Tensor apply(Tensor x, Tensor cos, Tensor sin) {
        int half = headDim / 2;
        Tensor x1 = x.narrow(-1, 0, half);
        Tensor x2 = x.narrow(-1, half, half);
        Tensor rotated = torch.cat(new TensorVector(x2.neg(), x1), -1); // rotate_half(x)
        if (cos.scalar_type().value != x.scalar_type().value) {   // bf16: HF casts cos/sin to x's dtype
            cos = cos.to(x.scalar_type());
            sin = sin.to(x.scalar_type());
        }
        return x.mul(cos).add(rotated.mul(sin));
    }
}
