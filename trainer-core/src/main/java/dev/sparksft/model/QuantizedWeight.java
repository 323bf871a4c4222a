package dev.sparksft.model;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

/**
 * A frozen linear weight held in 4 bits, as bitsandbytes' Linear4bit holds it (quantize_4bit,
 * blocksize 64): the flattened weight is cut into blocks of {@value #BLOCKSIZE} values (the last
 * may be shorter), each block scaled by the reciprocal of its absmax and every value encoded as
 * a 4-bit code of {@link FourBitType}; two codes share a byte, the first in the high nibble (an
 * odd count is padded with the code of 0). The absmax stays float32 or, with double
 * quantization, is itself held in 8 bits ({@link NestedAbsmax}).
 *
 * <p>{@link #dequantize} restores {@code values[code] * absmax[block]} in float32 and casts it to
 * the dtype the weight was held in before quantization (bnb's quant_state.dtype); a forward
 * dequantizes one linear at a time, so the full weight exists only while its matmul runs.
 */
public final class QuantizedWeight {
    public static final int BLOCKSIZE = 64;

    private final FourBitType type;
    private final long[] shape;
    private final torch.ScalarType dtype;
    private final Tensor packed;         // (ceil(n / 2)) uint8
    private final Tensor absmax;         // (blocks) float32, or null when nested
    private final NestedAbsmax nested;   // or null
    private final Tensor byteTable;      // (256, 2) float32 on the weight's device: {@link FourBitType#byteTable}

    private QuantizedWeight(FourBitType type, long[] shape, torch.ScalarType dtype, Tensor packed, Tensor absmax,
                            NestedAbsmax nested) {
        this.type = type;
        this.shape = shape.clone();
        this.dtype = dtype;
        this.packed = packed;
        this.absmax = absmax;
        this.nested = nested;
        this.byteTable = type.byteTable(packed.device());
    }

    /** {@code w} (any shape, float32 / bf16 / f16) in 4 bits of {@code type}, its absmax nested when {@code doubleQuant}. */
    public static QuantizedWeight quantize(Tensor w, FourBitType type, boolean doubleQuant) {
        try (PointerScope scope = new PointerScope()) {   // frees the int64 codes and float32 copies at once
            QuantizedWeight q = quantizeIn(w, type, doubleQuant);
            q.retainReferences(scope);
            return q;
        }
    }

    private static QuantizedWeight quantizeIn(Tensor w, FourBitType type, boolean doubleQuant) {
        long n = w.numel();
        long numBlocks = (n + BLOCKSIZE - 1) / BLOCKSIZE;
        Tensor flat = w.detach().reshape(-1).to(torch.ScalarType.Float);
        // a short last block is padded with zeros, which change no absmax; their codes are dropped
        Tensor blocks = torch.constant_pad_nd(flat, new long[] {0, numBlocks * BLOCKSIZE - n}, new Scalar(0))
                .view(numBlocks, BLOCKSIZE);
        Tensor absmax = blocks.abs().amax(new long[] {1}, false);                      // (blocks)
        // x * (1 / absmax), as the kernel scales: an all-zero block gives NaN, which encodes as code 0
        Tensor scaled = blocks.mul(absmax.reciprocal().unsqueeze(1)).view(-1);
        // an odd n never fills its last block, so the padded zero after it gives the pair's low nibble, as
        // bnb's kernel loads a short block with zeros
        Tensor codes = type.encode(scaled.narrow(0, 0, (n + 1) / 2 * 2));
        Tensor pairs = codes.view(-1, 2);                                               // (ceil(n / 2), 2)
        Tensor packed = pairs.select(1, 0).mul(new Scalar(16)).add_(pairs.select(1, 1)).to(torch.ScalarType.Byte);
        return doubleQuant
                ? new QuantizedWeight(type, w.sizes().vec().get(), w.scalar_type(), packed, null, NestedAbsmax.of(absmax))
                : new QuantizedWeight(type, w.sizes().vec().get(), w.scalar_type(), packed, absmax, null);
    }

    /**
     * The weight as the forward uses it: {@link #shape} in the dtype it was quantized from. Its
     * temporaries (int64 indices, float32 values) are freed before it returns; the result belongs
     * to the caller's PointerScope (the step's), or to the GC when there is none.
     */
    public Tensor dequantize() {
        PointerScope outer = PointerScope.getInnerScope();
        try (PointerScope scope = new PointerScope()) {
            long n = numel();
            long numBlocks = (n + BLOCKSIZE - 1) / BLOCKSIZE;
            // one lookup per byte: (256, 2) float32 values of the high and the low nibble
            Tensor values = byteTable.index_select(0, packed.to(torch.ScalarType.Long)).view(-1).narrow(0, 0, n); // (n)
            Tensor padded = torch.constant_pad_nd(values, new long[] {0, numBlocks * BLOCKSIZE - n}, new Scalar(0));
            Tensor w = padded.view(numBlocks, BLOCKSIZE).mul(absmax().unsqueeze(1)).view(-1).narrow(0, 0, n)
                    .reshape(shape).to(dtype);
            if (outer != null) {
                outer.attach(w);        // survives this scope, freed with the caller's
            } else {
                w.retainReference();
            }
            return w;
        }
    }

    /** The 4-bit codes unpacked: (n) uint8, high nibble first. */
    public Tensor codes() {
        Tensor p = packed.to(torch.ScalarType.Long);
        Tensor pairs = torch.stack(new org.bytedeco.pytorch.TensorVector(p.floor_divide(new Scalar(16)),
                p.remainder(new Scalar(16))), 1);                                       // (ceil(n / 2), 2)
        return pairs.view(-1).narrow(0, 0, numel()).to(torch.ScalarType.Byte);
    }

    /** The absmax of each block, (blocks) float32: restored from 8 bits when nested. */
    public Tensor absmax() {
        return nested == null ? absmax : nested.dequantize();
    }

    /** The double-quantization state, or null. */
    public NestedAbsmax nested() {
        return nested;
    }

    /** (ceil(n / 2)) uint8, two codes a byte. */
    public Tensor packed() {
        return packed;
    }

    public FourBitType type() {
        return type;
    }

    public long[] shape() {
        return shape.clone();
    }

    public long numel() {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        return n;
    }

    public Device device() {
        return packed.device();
    }

    /** Bytes this weight holds: half a byte per value, plus its absmax (4 bytes per block, or about 1 nested). */
    public long heldBytes() {
        return heldBytes(numel(), nested != null);
    }

    /** {@link #heldBytes()} of a weight of {@code numel} values, before it exists (for estimates). */
    public static long heldBytes(long numel, boolean doubleQuant) {
        long numBlocks = (numel + BLOCKSIZE - 1) / BLOCKSIZE;
        long absmaxBytes = doubleQuant
                ? numBlocks + 4 * ((numBlocks + NestedAbsmax.BLOCKSIZE - 1) / NestedAbsmax.BLOCKSIZE) + 4
                : 4 * numBlocks;
        return (numel + 1) / 2 + absmaxBytes;
    }

    /** Keeps this weight's tensors alive past {@code scope}, which frees what quantizing it made. */
    void retainReferences(org.bytedeco.javacpp.PointerScope scope) {
        java.util.List<Tensor> held = new java.util.ArrayList<>(java.util.List.of(packed, byteTable));
        if (absmax != null) {
            held.add(absmax);
        }
        if (nested != null) {
            held.add(nested.codes());
            held.add(nested.scales());
        }
        for (Tensor t : held) {
            t.retainReference();
            scope.detach(t);
        }
    }

    /** This weight on {@code device}. */
    public QuantizedWeight to(Device device) {
        return new QuantizedWeight(type, shape, dtype, packed.to(device, packed.scalar_type()),
                absmax == null ? null : absmax.to(device, absmax.scalar_type()), nested == null ? null : nested.to(device));
    }
}
