package dev.sparksft.model;

import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

/**
 * bitsandbytes' two 4-bit data types: a 4-bit code indexes {@link #codeValues}, which lie in [-1, 1]
 * and are scaled by the absmax of the code's block.
 *
 * <p>NF4 (NormalFloat) is 16 quantiles of the standard normal, sorted, so code i is the i-th
 * smallest value. FP4 is a float with a sign bit (8), 2 exponent and 1 mantissa bit, divided by
 * its largest value 12: the codes are in bit-pattern order, not value order.
 *
 * <p>Encoding follows bnb's CUDA kernels (dQuantizeNF4, dQuantizeFP4) exactly: their decision
 * trees compare with {@code >} against the float32 thresholds below, which amounts to counting
 * the thresholds a value exceeds. So a value exactly on a threshold takes the code below it (NF4:
 * the smaller value; FP4: the smaller magnitude), FP4's sign bit is set for every x < 0 (a tiny
 * negative value becomes -0, code 8), and a NaN (an all-zero block scaled by 1/0) becomes code 0.
 */
public enum FourBitType {
    NF4(new float[] {-1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
            -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f, 0.07958029955625534f,
            0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f, 0.44070982933044434f,
            0.5626170039176941f, 0.7229568362236023f, 1.0f},
            // the 15 split points of dQuantizeNF4's tree, ascending (the midpoints of neighbouring values)
            new float[] {-0.8480964004993439f, -0.6106329262256622f, -0.4599952697753906f, -0.33967943489551544f,
                    -0.23460740596055984f, -0.13791173323988914f, -0.045525018125772476f, 0.03979014977812767f,
                    0.1202552504837513f, 0.2035212516784668f, 0.2920137718319893f, 0.3893125355243683f,
                    0.5016634166240692f, 0.6427869200706482f, 0.8614784181118011f}),
    FP4(new float[] {0f, 0.0625f / 12, 8f / 12, 12f / 12, 4f / 12, 6f / 12, 2f / 12, 3f / 12,
            -0f, -0.0625f / 12, -8f / 12, -12f / 12, -4f / 12, -6f / 12, -2f / 12, -3f / 12},
            // dQuantizeFP4's 7 split points on |x|, ascending, as that kernel writes them
            new float[] {0.00260417f, 0.0859375f, 0.20833333f, 0.29166667f, 0.4166667f, 0.583333f, 0.8333333f});

    /** FP4: the 3 magnitude bits of the k-th smallest magnitude (0, 1/192, 1/6, 1/4, 1/3, 1/2, 2/3, 1). */
    private static final long[] FP4_MAGNITUDE_BITS = {0b000, 0b001, 0b110, 0b111, 0b100, 0b101, 0b010, 0b011};

    private final float[] values;
    private final float[] thresholds;

    FourBitType(float[] values, float[] thresholds) {
        this.values = values;
        this.thresholds = thresholds;
    }

    /** quantization_type's spelling: "nf4" or "fp4". */
    public String key() {
        return name().toLowerCase(java.util.Locale.ROOT);
    }

    /** The value of each of the 16 codes (before the block's absmax scales it). */
    public float[] codeValues() {
        return values.clone();
    }

    /**
     * The code of each element of {@code scaled}, a float32 tensor of values already divided by
     * their block's absmax (so in [-1, 1], or NaN for an all-zero block).
     *
     * @return int64 codes 0..15, the shape of {@code scaled}
     */
    Tensor encode(Tensor scaled) {
        Tensor x = this == NF4 ? scaled : scaled.abs();
        Tensor count = x.gt(new Scalar(thresholds[0])).to(torch.ScalarType.Long);
        for (int i = 1; i < thresholds.length; i++) {
            count.add_(x.gt(new Scalar(thresholds[i])));
        }
        if (this == NF4) {
            return count;
        }
        Tensor bits = Tensor.create(FP4_MAGNITUDE_BITS, new long[] {FP4_MAGNITUDE_BITS.length}).to(x.device(),
                torch.ScalarType.Long);
        Tensor sign = scaled.lt(new Scalar(0)).to(torch.ScalarType.Long).mul_(new Scalar(8));
        return bits.take(count).add_(sign);
    }

    /** (256, 2) float32: for each byte, the values of its high and its low nibble's codes. */
    Tensor byteTable(org.bytedeco.pytorch.Device device) {
        float[] pairs = new float[512];
        for (int b = 0; b < 256; b++) {
            pairs[2 * b] = values[b >> 4];
            pairs[2 * b + 1] = values[b & 15];
        }
        return Tensor.create(pairs, new long[] {256, 2}).to(device, torch.ScalarType.Float);
    }
}
