package dev.sparksft.model;

import dev.sparksft.UserError;
import java.util.Locale;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * The safetensors dtypes this project reads and writes, with their libtorch equivalents: the
 * float types of model weights, and I64 for optimizer bookkeeping (BAdam's block order).
 */
public enum Dtype {
    F32(ScalarType.Float, 4, "float32"),
    F16(ScalarType.Half, 2, "float16"),
    BF16(ScalarType.BFloat16, 2, "bfloat16"),
    I64(ScalarType.Long, 8, "int64");

    public final ScalarType scalarType;
    public final int numBytes;
    /** The name config.json uses in {@code torch_dtype}. */
    public final String torchName;

    Dtype(ScalarType scalarType, int numBytes, String torchName) {
        this.scalarType = scalarType;
        this.numBytes = numBytes;
        this.torchName = torchName;
    }

    /** Parses a safetensors dtype tag; throws naming the supported tags otherwise. */
    public static Dtype ofTag(String tag) {
        for (Dtype d : values()) {
            if (d.name().equals(tag)) {
                return d;
            }
        }
        throw new UserError("unsupported dtype '" + tag + "' (supported: F32, F16, BF16, I64)");
    }

    /** Parses config.json's {@code torch_dtype} ("bfloat16", "float32", ...). */
    public static Dtype ofTorchName(String name) {
        String n = name.toLowerCase(Locale.ROOT);
        for (Dtype d : values()) {
            if (d.torchName.equals(n) && d != I64) {
                return d;
            }
        }
        throw new UserError("unsupported torch_dtype '" + name + "' (supported: float32, float16, bfloat16)");
    }

    /**
     * The dtype of a libtorch scalar type. Compared by value: JavaCPP materialises the enums that
     * native calls return as fresh instances (ordinal 0), so identity and name() comparisons fail.
     */
    public static Dtype of(ScalarType t) {
        for (Dtype d : values()) {
            if (d.scalarType.value == t.value) {
                return d;
            }
        }
        throw new UserError("no safetensors dtype for libtorch type " + t);
    }
}
