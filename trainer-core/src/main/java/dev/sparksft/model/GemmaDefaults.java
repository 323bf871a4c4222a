package dev.sparksft.model;

import dev.sparksft.UserError;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.UncheckedIOException;

/**
 * The keys of Gemma2Config and Gemma3TextConfig that a config.json may leave out, with their
 * transformers defaults. save_pretrained writes a nested config (gemma3's text_config) as its
 * difference from the class defaults (google/gemma-3-4b's text_config names six keys), and drops
 * a top-level key the base class also defaults (tie_word_embeddings: true), so reading such a file
 * needs these values.
 */
final class GemmaDefaults {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final ObjectNode GEMMA2 = parse("""
            {"vocab_size": 256000, "hidden_size": 2304, "intermediate_size": 9216, "num_hidden_layers": 26,
             "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 256,
             "hidden_activation": "gelu_pytorch_tanh", "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
             "attention_bias": false, "query_pre_attn_scalar": 256, "sliding_window": 4096,
             "final_logit_softcapping": 30.0, "attn_logit_softcapping": 50.0, "tie_word_embeddings": true}""");
    private static final ObjectNode GEMMA3_TEXT = parse("""
            {"vocab_size": 262208, "hidden_size": 2304, "intermediate_size": 9216, "num_hidden_layers": 26,
             "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 256,
             "hidden_activation": "gelu_pytorch_tanh", "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
             "attention_bias": false, "query_pre_attn_scalar": 256, "sliding_window": 4096,
             "final_logit_softcapping": null, "attn_logit_softcapping": null, "rope_scaling": null,
             "rope_local_base_freq": 10000.0, "sliding_window_pattern": 6, "tie_word_embeddings": true,
             "use_bidirectional_attention": false}""");

    private GemmaDefaults() {}

    /**
     * The object holding {@code arch}'s text-model keys: the file itself for the Llama family; for
     * Gemma the file (gemma3: its text_config) over the config class's defaults, a copy.
     */
    static ObjectNode textConfig(Architecture arch, ObjectNode file, String source) {
        if (!arch.isGemma()) {
            return file;
        }
        JsonNode text = file;
        if (arch.textConfigKey() != null) {
            text = file.get(arch.textConfigKey());
            if (text == null || !text.isObject()) {
                throw new UserError(source + ": a " + arch.modelType + " config.json needs a '" + arch.textConfigKey()
                        + "' object (the text model's config); got " + text);
            }
            String inner = text.path("model_type").asText("gemma3_text");
            if (!inner.equals("gemma3_text")) {
                throw new UserError(source + ": text_config.model_type is '" + inner + "'; a gemma3 checkpoint's "
                        + "text model must be gemma3_text");
            }
        }
        ObjectNode merged = (arch == Architecture.GEMMA2 ? GEMMA2 : GEMMA3_TEXT).deepCopy();
        merged.setAll((ObjectNode) text.deepCopy());
        return merged;
    }

    private static ObjectNode parse(String json) {
        try {
            return (ObjectNode) JSON.readTree(json);
        } catch (java.io.IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
