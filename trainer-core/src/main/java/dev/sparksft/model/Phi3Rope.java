package dev.sparksft.model;

import dev.sparksft.UserError;
import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.List;

/**
 * What config.json says of Phi-3's RoPE and dropout, read as transformers' Phi3Config and
 * {@code _compute_longrope_parameters} read it (Phi3Config's class defaults for omitted keys:
 * partial_rotary_factor 1.0, max_position_embeddings and original_max_position_embeddings 4096).
 */
final class Phi3Rope {
    static final int DEFAULT_MAX_POSITIONS = 4096;
    private static final List<String> DROPOUTS = List.of("attention_dropout", "resid_pdrop", "embd_pdrop");

    private Phi3Rope() {}

    /** The rotary dimension: int(head_dim * partial_rotary_factor), the leading part of each head that RoPE turns. */
    static int rotaryDim(int headDim, double partialRotaryFactor) {
        return (int) (headDim * partialRotaryFactor);
    }

    /** partial_rotary_factor, in (0, 1], with an even rotary dimension. */
    static double partialRotaryFactor(JsonNode c, int headDim, String source) {
        JsonNode v = c.get("partial_rotary_factor");
        double f = v == null || v.isNull() ? 1.0 : v.asDouble(Double.NaN);
        if (v != null && !v.isNull() && !v.isNumber() || !(f > 0 && f <= 1)) {
            throw new UserError(source + ": partial_rotary_factor must be a number in (0, 1], got " + v);
        }
        int dim = rotaryDim(headDim, f);
        if (dim < 2 || dim % 2 != 0) {
            throw new UserError(source + ": partial_rotary_factor " + f + " gives a rotary dimension of " + dim
                    + " (int(head_dim " + headDim + " * factor)); it must be even and at least 2");
        }
        return f;
    }

    /**
     * Dropout is not applied by spark-sft's forward, in training either: a nonzero rate is refused
     * rather than silently not applied (the released Phi-3 and Phi-4-mini configs have 0.0).
     */
    static void refuseDropout(JsonNode c, String source) {
        for (String key : DROPOUTS) {
            if (c.path(key).asDouble(0) != 0) {
                throw new UserError(source + ": " + key + "=" + c.get(key) + " is not supported (spark-sft trains "
                        + "without dropout in the model); set " + key + ": 0.0");
            }
        }
    }

    /**
     * rope_scaling of type longrope: short_factor and long_factor, one per rotary frequency
     * (rotary_dim / 2), and attention_factor, or by default sqrt(1 + ln(s) / ln(original)) with
     * s = max_position_embeddings / original_max_position_embeddings (1 when s <= 1).
     */
    static ModelConfig.RopeScaling longRope(JsonNode c, int headDim, String source) {
        JsonNode s = c.get("rope_scaling");
        int dim = rotaryDim(headDim, partialRotaryFactor(c, headDim, source));
        List<Double> shortFactor = factors(s, "short_factor", dim / 2, source);
        List<Double> longFactor = factors(s, "long_factor", dim / 2, source);
        int original = positiveInt(c, "original_max_position_embeddings", source);
        int max = positiveInt(c, "max_position_embeddings", source);
        double scale = (double) max / original;
        double attention;
        if (s.hasNonNull("attention_factor")) {
            attention = s.get("attention_factor").asDouble(Double.NaN);
            if (!(attention > 0)) {
                throw new UserError(source + ": rope_scaling.attention_factor must be a positive number, got "
                        + s.get("attention_factor"));
            }
        } else {
            attention = scale <= 1 ? 1.0 : Math.sqrt(1 + Math.log(scale) / Math.log(original));
        }
        return new ModelConfig.RopeScaling("longrope", scale, 0, 0, original, shortFactor, longFactor, attention);
    }

    private static List<Double> factors(JsonNode s, String key, int count, String source) {
        JsonNode v = s.get(key);
        if (v == null || !v.isArray() || v.size() != count) {
            throw new UserError(source + ": rope_scaling of type longrope needs '" + key + "', a list of " + count
                    + " numbers (rotary_dim / 2), got " + v);
        }
        List<Double> out = new ArrayList<>();
        for (JsonNode f : v) {
            if (!f.isNumber() || !(f.asDouble() > 0)) {
                throw new UserError(source + ": rope_scaling." + key + " must hold positive numbers, got " + f);
            }
            out.add(f.asDouble());
        }
        return out;
    }

    private static int positiveInt(JsonNode c, String key, String source) {
        JsonNode v = c.get(key);
        if (v == null || v.isNull()) {
            return DEFAULT_MAX_POSITIONS;
        }
        if (!v.canConvertToInt() || v.asInt() <= 0) {
            throw new UserError(source + ": " + key + " must be a positive integer, got " + v);
        }
        return v.asInt();
    }
}
