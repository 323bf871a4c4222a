package dev.sparksft.model;

import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

/**
 * Double quantization (bnb's compress_statistics, QLoRA's "double quant"): the float32 absmax of
 * every 64-value block of a 4-bit weight, itself quantized to 8 bits. bnb subtracts the mean
 * ({@link #offset}), quantizes the centred absmax in blocks of {@value #BLOCKSIZE} with the signed
 * 8-bit dynamic map ({@link #DYNAMIC_MAP}) scaled by each block's own absmax ({@link #scales}),
 * and restores {@code absmax[i] = map[codes[i]] * scales[i / 256] + offset}.
 *
 * <p>The codes follow bnb's CUDA kernel (kQuantizeBlockwise with dQuantize): x times the
 * reciprocal of the block's absmax, a 7-step binary search over the sorted map, then the nearer
 * neighbour by float32 midpoint (a tie goes to the entry the search stopped on). The offset is
 * the mean summed in double and rounded to float; bnb's is torch's float32 mean, which may
 * differ from it in the last bit.
 *
 * @param codes  (blocks) uint8
 * @param scales (ceil(blocks / 256)) float32
 */
public record NestedAbsmax(Tensor codes, Tensor scales, float offset) {
    public static final int BLOCKSIZE = 256;
    /** bnb's create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8): 256 sorted values in [-1, 1]. */
    static final float[] DYNAMIC_MAP = dynamicMap();   // class initialisation needs libtorch loaded

    /** {@code absmax} (blocks) float32, quantized; the tensors live where {@code absmax} does. */
    public static NestedAbsmax of(Tensor absmax) {
        Device device = absmax.device();
        float[] a = floats(absmax);
        double sum = 0;
        for (float v : a) {
            sum += v;
        }
        float offset = (float) (sum / a.length);
        int numBlocks = (a.length + BLOCKSIZE - 1) / BLOCKSIZE;
        long[] codes = new long[a.length];
        float[] scales = new float[numBlocks];
        for (int b = 0; b < numBlocks; b++) {
            int start = b * BLOCKSIZE;
            int end = Math.min(start + BLOCKSIZE, a.length);
            float max = 0;
            for (int i = start; i < end; i++) {
                max = Math.max(max, Math.abs(a[i] - offset));
            }
            scales[b] = max;
            float inv = 1.0f / max;
            for (int i = start; i < end; i++) {
                codes[i] = nearest(DYNAMIC_MAP, (a[i] - offset) * inv);
            }
        }
        Tensor c = Tensor.create(codes, new long[] {codes.length}).to(device, torch.ScalarType.Byte);
        Tensor s = Tensor.create(scales, new long[] {scales.length}).to(device, torch.ScalarType.Float);
        return new NestedAbsmax(c, s, offset);
    }

    /** The absmax these hold: (blocks) float32, map[codes] * scales[block] + offset. */
    public Tensor dequantize() {
        long n = codes.size(0);
        long numBlocks = scales.size(0);
        Tensor map = Tensor.create(DYNAMIC_MAP, new long[] {DYNAMIC_MAP.length}).to(codes.device(), torch.ScalarType.Float);
        Tensor values = map.take(codes.to(torch.ScalarType.Long));                  // (blocks)
        Tensor padded = torch.constant_pad_nd(values, new long[] {0, numBlocks * BLOCKSIZE - n}, new Scalar(0));
        Tensor scaled = padded.view(numBlocks, BLOCKSIZE).mul(scales.unsqueeze(1)).view(-1).narrow(0, 0, n);
        return scaled.add_(new Scalar(offset));
    }

    /** Bytes held: one code per block of the 4-bit weight, a float per 256 of them, the offset. */
    public long heldBytes() {
        return codes.numel() + 4 * scales.numel() + 4;
    }

    NestedAbsmax to(Device device) {
        return new NestedAbsmax(codes.to(device, codes.scalar_type()), scales.to(device, scales.scalar_type()), offset);
    }

    /** dQuantize&lt;0&gt;: the code of {@code x} in the sorted 256-entry {@code map}, as bnb's CUDA kernel picks it. */
    static int nearest(float[] map, float x) {
        int pivot = 127;
        int upperPivot = 255;
        int lowerPivot = 0;
        float lower = -1.0f;
        float upper = 1.0f;
        float val = map[pivot];
        for (int i = 64; i > 0; i >>= 1) {
            if (x > val) {
                lowerPivot = pivot;
                lower = val;
                pivot += i;
            } else {
                upperPivot = pivot;
                upper = val;
                pivot -= i;
            }
            val = map[pivot];
        }
        if (upperPivot == 255) {
            upper = map[upperPivot];
        }
        if (lowerPivot == 0) {
            lower = map[lowerPivot];
        }
        if (x > val) {
            return x > (upper + val) * 0.5f ? upperPivot : pivot;
        }
        return x < (lower + val) * 0.5f ? lowerPivot : pivot;
    }

    /**
     * create_dynamic_map, with the torch ops bnb runs (on the CPU, where bnb builds the map before
     * moving it): for i in 0..6 the midpoints of linspace(0.1, 1, 2^i + 1) in float32, times 10^(i-6)
     * and its negative, then 0 and 1, sorted. torch's vectorized linspace rounds start + i * step
     * once, so a scalar re-creation of it can be a float32 step off.
     */
    private static float[] dynamicMap() {
        float[] data = new float[256];
        int k = 0;
        for (int i = 0; i < 7; i++) {
            Tensor b = torch.linspace(new Scalar(0.1), new Scalar(1.0), (1L << i) + 1,
                    new org.bytedeco.pytorch.TensorOptions(torch.ScalarType.Float));
            long m = b.size(0) - 1;
            Tensor means = b.narrow(0, 0, m).add(b.narrow(0, 1, m)).div(new Scalar(2.0));
            float[] pos = floats(means.mul(new Scalar(Math.pow(10, -6 + i))));
            float[] neg = floats(means.mul(new Scalar(-Math.pow(10, -6 + i))));
            for (int j = 0; j < pos.length; j++) {
                data[k++] = pos[j];
                data[k++] = neg[j];
            }
        }
        data[k++] = 0f;
        data[k] = 1.0f;
        java.util.Arrays.sort(data);
        return data;
    }

    private static float[] floats(Tensor t) {
        Tensor c = t.to(new Device(torch.DeviceType.CPU), torch.ScalarType.Float).contiguous();
        float[] a = new float[(int) c.numel()];
        new org.bytedeco.javacpp.FloatPointer(c.data_ptr()).capacity(a.length).get(a);
        return a;
    }
}
