package dev.sparksft.model;

import dev.sparksft.UserError;
import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * How a family's forward pass departs from Llama's, read from config.json once. Llama's options
 * change nothing: w * x RMSNorm, SwiGLU, unscaled embeddings, pre-norm blocks, no soft-caps,
 * scores scaled by head_dim^-0.5 and one RoPE for every layer. Gemma's are transformers'
 * Gemma2/Gemma3 modelling code.
 *
 * @param normOffset         RMSNorm scales by (normOffset + w), in float32: Gemma stores w - 1 and uses 1
 * @param activation         the MLP's gate activation
 * @param scaleEmbedding     the token embeddings are multiplied by sqrt(hidden_size), rounded to their dtype
 * @param sandwichNorms      Gemma's block: post_attention_layernorm normalises the attention output and
 *                           pre_feedforward_layernorm / post_feedforward_layernorm wrap the MLP
 * @param attentionSoftcap   attn_logit_softcapping: scores = tanh(scores / cap) * cap before the mask; 0: none
 * @param finalSoftcap       final_logit_softcapping: logits = tanh(logits / cap) * cap; 0: none
 * @param queryPreAttnScalar query_pre_attn_scalar: scores are scaled by its ^-0.5; 0: by head_dim^-0.5
 * @param slidingLayers      per layer, whether it attends within sliding_window (layer_types' "sliding_attention")
 * @param localRopeTheta     rope_local_base_freq, the plain RoPE base of the sliding layers; 0: the global RoPE on all
 * @param partialRotaryFactor Phi-3's partial_rotary_factor: RoPE turns the first int(head_dim * factor)
 *                           dimensions of each head and passes the rest through; 1 for every other family
 */
public record ForwardOptions(double normOffset, Activation activation, boolean scaleEmbedding, boolean sandwichNorms,
                             double attentionSoftcap, double finalSoftcap, double queryPreAttnScalar,
                             List<Boolean> slidingLayers, double localRopeTheta, double partialRotaryFactor) {

    /** The MLP's gate activation: down(act(gate(x)) * up(x)). */
    public enum Activation {
        /** SwiGLU: hidden_act "silu" */
        SILU,
        /** GeGLU: hidden_activation "gelu_pytorch_tanh", gelu with the tanh approximation */
        GELU_TANH
    }

    public ForwardOptions {
        slidingLayers = List.copyOf(slidingLayers);
    }

    /** Llama's forward with every layer windowed when {@code windowed} (Mistral's sliding_window) or none. */
    static ForwardOptions llama(int numLayers, boolean windowed) {
        return new ForwardOptions(0, Activation.SILU, false, false, 0, 0, 0,
                Collections.nCopies(numLayers, windowed), 0, 1.0);
    }

    /**
     * The options of {@code arch} from its text config {@code c} (Gemma's with the config class's
     * defaults filled in), every problem named by key.
     */
    static ForwardOptions read(Architecture arch, JsonNode c, int numLayers, int headDim, String source) {
        if (arch == Architecture.PHI3) {
            return phi3(c, numLayers, headDim, source);
        }
        if (!arch.isGemma()) {
            String act = c.path("hidden_act").asText("silu");
            if (!act.equals("silu")) {
                throw new UserError(source + ": hidden_act '" + act + "' is not supported (only silu)");
            }
            return llama(numLayers, arch.slidingWindowKey != null && c.path(arch.slidingWindowKey).asInt(0) > 0);
        }
        String act = c.path("hidden_activation").asText("gelu_pytorch_tanh");
        if (!act.equals("gelu_pytorch_tanh")) {
            throw new UserError(source + ": hidden_activation '" + act + "' is not supported for " + arch.modelType
                    + " (only gelu_pytorch_tanh); set hidden_activation: gelu_pytorch_tanh");
        }
        if (c.path("use_bidirectional_attention").asBoolean(false)) {
            throw new UserError(source + ": use_bidirectional_attention=true (an embedding model) is not supported; "
                    + "a causal LM needs false");
        }
        double scalar = positiveOrNone(c, "query_pre_attn_scalar", source);
        if (scalar == 0) {
            throw new UserError(source + ": query_pre_attn_scalar must be a positive number for " + arch.modelType);
        }
        double localTheta = 0;
        if (arch != Architecture.GEMMA2) {
            localTheta = positiveOrNone(c, "rope_local_base_freq", source);
        }
        return new ForwardOptions(1, Activation.GELU_TANH, true, true, positiveOrNone(c, "attn_logit_softcapping", source),
                positiveOrNone(c, "final_logit_softcapping", source), scalar, slidingLayers(arch, c, numLayers, source),
                localTheta, 1.0);
    }

    /** Phi-3's: Llama's with partial_rotary_factor, a window on every layer when sliding_window is set, no dropout. */
    private static ForwardOptions phi3(JsonNode c, int numLayers, int headDim, String source) {
        String act = c.path("hidden_act").asText("silu");
        if (!act.equals("silu")) {
            throw new UserError(source + ": hidden_act '" + act + "' is not supported for phi3 (only silu); "
                    + "set hidden_act: silu");
        }
        Phi3Rope.refuseDropout(c, source);
        return new ForwardOptions(0, Activation.SILU, false, false, 0, 0, 0,
                Collections.nCopies(numLayers, c.path("sliding_window").asInt(0) > 0), 0,
                Phi3Rope.partialRotaryFactor(c, headDim, source));
    }

    /**
     * layer_types when config.json has it (transformers >= 4.53 writes it), else the family's
     * rule: Gemma 2 windows the even layers, Gemma 3 every layer but each sliding_window_pattern-th.
     */
    private static List<Boolean> slidingLayers(Architecture arch, JsonNode c, int numLayers, String source) {
        List<Boolean> sliding = new ArrayList<>();
        JsonNode types = c.get("layer_types");
        if (types != null && !types.isNull()) {
            if (!types.isArray() || types.size() != numLayers) {
                throw new UserError(source + ": layer_types must list one entry per layer (num_hidden_layers = "
                        + numLayers + "), got " + types);
            }
            for (JsonNode t : types) {
                String type = t.asText();
                if (!type.equals("sliding_attention") && !type.equals("full_attention")) {
                    throw new UserError(source + ": layer_types entry '" + type + "' is not supported; use "
                            + "sliding_attention or full_attention");
                }
                sliding.add(type.equals("sliding_attention"));
            }
            return sliding;
        }
        int pattern = arch == Architecture.GEMMA2 ? 2 : c.path("sliding_window_pattern").asInt(6);
        if (pattern <= 0) {
            throw new UserError(source + ": sliding_window_pattern must be positive, got " + pattern);
        }
        for (int i = 0; i < numLayers; i++) {
            sliding.add((i + 1) % pattern != 0);
        }
        return sliding;
    }

    /** A positive number under {@code key}, or 0 when it is null or absent (the feature is off). */
    private static double positiveOrNone(JsonNode c, String key, String source) {
        JsonNode v = c.get(key);
        if (v == null || v.isNull()) {
            return 0;
        }
        if (!v.isNumber() || !(v.asDouble() > 0)) {
            throw new UserError(source + ": " + key + " must be a positive number or null, got " + v);
        }
        return v.asDouble();
    }

    /** Whether the scores are soft-capped, which the fused attention kernel cannot do. */
    public boolean capsAttention() {
        return attentionSoftcap > 0;
    }
}
