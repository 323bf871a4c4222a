#!/usr/bin/env python3
"""Independent reference for the 4-bit quantization tests (QuantizedWeightTest).

Re-creates bitsandbytes' quantize_4bit / dequantize_4bit (blocksize 64, NF4 and FP4) and its
double quantization (compress_statistics: the absmax minus its mean, quantized with
quantize_blockwise at blocksize 256 over the signed 8-bit dynamic map) in float32 numpy, written
from bnb's CUDA kernels, sharing no code with the Java implementation:

  * kQuantizeBlockwise: absmax = max |x| of each block (a short last block is zero-filled),
    scaled = x * (1 / absmax) in float32 (an all-zero block gives 0 * inf = NaN)
  * dQuantizeNF4 / dQuantizeFP4: the kernels' decision trees, written out as nested comparisons
    with their float32 constants; FP4's sign bit is set for x < 0
  * two codes a byte, the first element in the high nibble
  * dQuantize<0>: the binary search over the 256-entry dynamic map with midpoint tie-break
  * create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8) with torch.linspace's
    float32 rule (start + i*step for the first half, end - (n-1-i)*step for the rest, one rounding)
  * the mean for the offset: summed in float64, rounded to float32 (torch's float32 mean may
    differ in its last bit; the Java side uses the same rule)

Cases: one tensor of edge blocks (zeros, equal values, values exactly on every threshold and one
float32 step either side, tiny negatives, a short odd tail: 485 values, shape (5, 97)) and one
normal tensor of shape (67, 250): 262 blocks, so the nested absmax has two 256-blocks, the second
short. Arrays are stored as hex: float32 little-endian, the packed codes as bytes (two codes each).

Run from the repository root:  python3 trainer-core/src/test/python/make_quantization_fixtures.py
Needs only numpy.
"""
import json
import os
from fractions import Fraction

import numpy as np

OUT = os.path.join(os.path.dirname(__file__), "..", "resources", "quantization")
f32 = np.float32

NF4 = np.array([-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
                -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
                0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
                0.7229568362236023, 1.0], dtype=f32)
FP4 = (np.array([0, 0.0625, 8.0, 12.0, 4.0, 6.0, 2.0, 3.0, -0.0, -0.0625, -8.0, -12.0, -4.0, -6.0, -2.0, -3.0],
                dtype=f32) / f32(12)).astype(f32)
NF4_SPLITS = [-0.8480964004993439, -0.6106329262256622, -0.4599952697753906, -0.33967943489551544,
              -0.23460740596055984, -0.13791173323988914, -0.045525018125772476, 0.03979014977812767,
              0.1202552504837513, 0.2035212516784668, 0.2920137718319893, 0.3893125355243683,
              0.5016634166240692, 0.6427869200706482, 0.8614784181118011]
FP4_SPLITS = [0.00260417, 0.0859375, 0.20833333, 0.29166667, 0.4166667, 0.583333, 0.8333333]


def literal(text):
    """A C float literal ("0.12f"): the decimal rounded once to the nearest float32 (ties to even).
    Going through float64 first would round twice, which for these midpoints of float32 values
    can land one float32 step away from what the CUDA compiler (and Java) make of the literal."""
    exact = Fraction(text)
    near = f32(float(exact))
    cands = [np.nextafter(near, f32(-2)), near, np.nextafter(near, f32(2))]
    return min(cands, key=lambda c: (abs(Fraction(float(c)) - exact), int(c.view(np.uint32)) & 1))


def gt(x, c):
    return x > literal(repr(c))   # NaN compares false, as on the GPU


def nf4_code(x):
    """dQuantizeNF4, the tree of tests/test_functional.py's test_normal_map_tree, branch by branch."""
    w = np.where
    hi = w(gt(x, 0.3893125355243683),
           w(gt(x, 0.6427869200706482), w(gt(x, 0.8614784181118011), 15, 14), w(gt(x, 0.5016634166240692), 13, 12)),
           w(gt(x, 0.2035212516784668), w(gt(x, 0.2920137718319893), 11, 10), w(gt(x, 0.1202552504837513), 9, 8)))
    lo = w(gt(x, -0.33967943489551544),
           w(gt(x, -0.13791173323988914), w(gt(x, -0.045525018125772476), 7, 6), w(gt(x, -0.23460740596055984), 5, 4)),
           w(gt(x, -0.6106329262256622), w(gt(x, -0.4599952697753906), 3, 2), w(gt(x, -0.8480964004993439), 1, 0)))
    return w(gt(x, 0.03979014977812767), hi, lo).astype(np.uint8)


def fp4_code(x):
    """dQuantizeFP4: a sign bit for x < 0, then the tree on |x|."""
    w = np.where
    sign = w(x < 0, 8, 0)
    a = np.abs(x)
    mag = w(gt(a, 0.29166667),
            w(gt(a, 0.583333), w(gt(a, 0.8333333), 0b011, 0b010), w(gt(a, 0.4166667), 0b101, 0b100)),
            w(gt(a, 0.0859375), w(gt(a, 0.20833333), 0b111, 0b110), w(gt(a, 0.00260417), 0b001, 0b000)))
    return (mag + sign).astype(np.uint8)


def quantize_4bit(a, kind):
    flat = a.reshape(-1).astype(f32)
    n = flat.size
    blocks = -(-n // 64)
    padded = np.zeros(blocks * 64, dtype=f32)
    padded[:n] = flat
    padded = padded.reshape(blocks, 64)
    absmax = np.abs(padded).max(axis=1).astype(f32)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = (f32(1) / absmax).astype(f32)
        scaled = (padded * inv[:, None]).astype(f32).reshape(-1)
    codes = (nf4_code if kind == "nf4" else fp4_code)(scaled)[: (n + 1) // 2 * 2]
    packed = ((codes[0::2].astype(np.uint16) << 4) | codes[1::2]).astype(np.uint8)
    return codes[:n], packed, absmax


def linspace_f32(start, end, steps):
    """torch.linspace on the CPU in float32: step = (end - start) / (steps - 1); the first half is
    start + i * step, the rest end - (steps - 1 - i) * step, each rounded once (the vectorized
    kernel's fused multiply-add), which float64 arithmetic reproduces exactly here."""
    start, end = f32(start), f32(end)
    step = f32((end - start) / f32(steps - 1))
    out = []
    for i in range(steps):
        out.append(f32(np.float64(start) + np.float64(step) * i) if i < steps // 2
                   else f32(np.float64(end) - np.float64(step) * (steps - 1 - i)))
    return np.array(out, dtype=f32)


def dynamic_map():
    data = []
    for i in range(7):
        b = linspace_f32(0.1, 1.0, 2 ** i + 1)
        means = ((b[:-1] + b[1:]) / f32(2)).astype(f32)
        scale = f32(10.0 ** (-6 + i))
        data += list((scale * means).astype(f32))
        data += list((-(scale * means)).astype(f32))
    data += [f32(0), f32(1)]
    return np.sort(np.array(data, dtype=f32))


def dquantize(code, x):
    """dQuantize<0>, line by line."""
    pivot, upper_pivot, lower_pivot = 127, 255, 0
    lower, upper = f32(-1), f32(1)
    val = code[pivot]
    i = 64
    while i > 0:
        if x > val:
            lower_pivot, lower, pivot = pivot, val, pivot + i
        else:
            upper_pivot, upper, pivot = pivot, val, pivot - i
        val = code[pivot]
        i >>= 1
    if upper_pivot == 255:
        upper = code[upper_pivot]
    if lower_pivot == 0:
        lower = code[lower_pivot]
    if x > val:
        return upper_pivot if x > f32(f32(upper + val) * f32(0.5)) else pivot
    return lower_pivot if x < f32(f32(lower + val) * f32(0.5)) else pivot


def double_quant(absmax):
    code = dynamic_map()
    offset = f32(np.sum(absmax.astype(np.float64)) / absmax.size)
    centred = (absmax - offset).astype(f32)
    nblocks = -(-centred.size // 256)
    codes = np.zeros(centred.size, dtype=np.uint8)
    scales = np.zeros(nblocks, dtype=f32)
    for b in range(nblocks):
        blk = centred[b * 256:(b + 1) * 256]
        scales[b] = np.abs(blk).max()
        inv = f32(f32(1) / scales[b])
        for j, v in enumerate(blk):
            codes[b * 256 + j] = dquantize(code, f32(v * inv))
    restored = (code[codes] * np.repeat(scales, 256)[: centred.size]).astype(f32) + offset
    return codes, scales, offset, restored.astype(f32)


def dequantize(codes, absmax, kind, shape):
    table = NF4 if kind == "nf4" else FP4
    n = codes.size
    vals = table[codes].astype(f32)
    scale = np.repeat(absmax, 64)[:n]
    return (vals * scale).astype(f32).reshape(shape)


def hexf(a):
    return np.ascontiguousarray(a, dtype="<f4").tobytes().hex()


def edge_tensor():
    rng = np.random.default_rng(7)
    blocks = [np.zeros(64, dtype=f32), np.full(64, 0.37, dtype=f32), np.full(64, -0.37, dtype=f32)]
    for splits in (NF4_SPLITS, [s for t in FP4_SPLITS for s in (t, -t)]):
        ties = []
        for t in splits:   # exactly on the threshold, and one float32 step either side (absmax is 1)
            t = literal(repr(t))
            ties += [t, np.nextafter(t, f32(2)), np.nextafter(t, f32(-2))]
        vals = np.array(ties + [1.0], dtype=f32)
        for i in range(0, vals.size, 63):
            chunk = list(vals[i:i + 63])
            blocks.append(np.array(chunk + [1.0] + [0.0] * (63 - len(chunk)), dtype=f32))
    tiny = np.array([-1e-4, -0.0, 1e-4, -0.002, 0.002, -0.5] + [0.0] * 58, dtype=f32)
    blocks.append(tiny)
    flat = np.concatenate(blocks)
    rest = 485 - flat.size
    assert rest > 0, flat.size
    flat = np.concatenate([flat, (rng.standard_normal(rest) * 0.02).astype(f32)])
    return flat.reshape(5, 97)


def case(name, a):
    out = {"shape": list(a.shape), "input": hexf(a), "dynamic_map": hexf(dynamic_map())}
    for kind in ("nf4", "fp4"):
        codes, packed, absmax = quantize_4bit(a, kind)
        qc, scales, offset, restored = double_quant(absmax)
        out[kind] = {
            "packed": packed.tobytes().hex(),
            "absmax": hexf(absmax),
            "dequantized": hexf(dequantize(codes, absmax, kind, a.shape)),
            "nested_codes": qc.tobytes().hex(),
            "nested_scales": hexf(scales),
            "nested_offset": hexf(np.array([offset], dtype=f32)),
            "nested_absmax": hexf(restored),
        }
    with open(os.path.join(OUT, name + ".json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


def main():
    os.makedirs(OUT, exist_ok=True)
    case("edge", edge_tensor())
    rng = np.random.default_rng(11)
    # rows of different scales, as a linear weight has
    normal = (rng.standard_normal((67, 250)) * np.linspace(0.005, 0.1, 67)[:, None]).astype(f32)
    case("normal", normal)


if __name__ == "__main__":
    main()
