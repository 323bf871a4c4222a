package dev.sparksft.model;

import dev.sparksft.UserError;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.ArrayList;
import java.util.List;

/**
 * What a Qwen2-VL or Qwen2.5-VL config.json says beyond its Qwen2 decoder: the vision tower, how M-RoPE
 * splits each head's rotary pairs among time, height and width, and the special tokens. Two layouts exist
 * and both are read:
 * <pre>
 *   hub (transformers 4.x)  text keys at the top level, rope_theta, rope_scaling {"type": "mrope", "mrope_section"}
 *   transformers 5          text keys under text_config, text_config.rope_parameters {"rope_theta", "mrope_section"}
 * </pre>
 * Both keep vision_config, image_token_id, video_token_id and vision_start_token_id at the top level.
 *
 * @param mropeSection per section, its count of rotary pairs; section i takes its angles from axis i % 3 (time,
 *                     height, width), as apply_multimodal_rotary_pos_emb splits them; sums to head_dim / 2
 */
public record Qwen2VlConfig(VisionConfig vision, List<Integer> mropeSection, int imageTokenId, int videoTokenId,
                            int visionStartTokenId) {
    /** Qwen2VLTextConfig's default rope_theta. */
    private static final double DEFAULT_THETA = 1000000.0;

    public Qwen2VlConfig {
        mropeSection = List.copyOf(mropeSection);
    }

    /**
     * The text model's keys as {@link ModelConfig} reads them: the top level with text_config's keys over it,
     * rope_theta taken out of rope_parameters / rope_scaling (whose mrope type rotates with default frequencies,
     * so no rope_scaling is left), tie_word_embeddings when either level ties (as Qwen2VLConfig decides). A copy.
     */
    static ObjectNode textConfig(ObjectNode file, String source) {
        ObjectNode c = merged(file, source);
        JsonNode rope = rope(c);
        if (rope != null) {
            String type = rope.hasNonNull("rope_type") ? rope.get("rope_type").asText() : rope.path("type").asText("default");
            if (!type.equals("default") && !type.equals("mrope")) {
                throw new UserError(source + ": rope type '" + type + "' is not supported for " + file.path("model_type")
                        .asText() + " (only default / mrope, Qwen2-VL's M-RoPE); remove the scaling from "
                        + (c.hasNonNull("rope_parameters") ? "rope_parameters" : "rope_scaling"));
            }
            if (rope.hasNonNull("rope_theta")) {
                c.set("rope_theta", rope.get("rope_theta"));
            }
        }
        if (!c.hasNonNull("rope_theta")) {
            c.put("rope_theta", DEFAULT_THETA);
        }
        c.remove("rope_parameters");
        c.remove("rope_scaling");
        return c;
    }

    /** The multimodal parts of {@code file}, a model of {@code arch} with heads of {@code headDim} and {@code textHidden} wide. */
    static Qwen2VlConfig read(Architecture arch, ObjectNode file, int headDim, int textHidden, String source) {
        VisionConfig vision = VisionConfig.read(arch, file.get("vision_config"), textHidden, source);
        ObjectNode c = merged(file, source);
        JsonNode rope = rope(c);
        String where = (c.hasNonNull("rope_parameters") ? "rope_parameters" : "rope_scaling") + ".mrope_section";
        List<Integer> section = new ArrayList<>();
        JsonNode s = rope == null ? null : rope.get("mrope_section");
        if (s == null || s.isNull()) {
            section.addAll(List.of(16, 24, 24));                        // the rotary embedding's default
        } else if (!s.isArray() || s.isEmpty()) {
            throw new UserError(source + ": " + where + " must be a list of pair counts (time, height, width), got " + s);
        } else {
            s.forEach(n -> section.add(n.asInt(-1)));
        }
        int sum = section.stream().mapToInt(Integer::intValue).sum();
        if (section.stream().anyMatch(n -> n < 0) || sum != headDim / 2) {
            throw new UserError(source + ": " + where + " " + section + " must be non-negative and sum to head_dim / 2 = "
                    + headDim / 2 + " (head_dim " + headDim + "), but sums to " + sum + "; use the checkpoint's "
                    + "mrope_section (Qwen2-VL's is [16, 24, 24] for head_dim 128)");
        }
        return new Qwen2VlConfig(vision, section, id(file, "image_token_id", 151655, source),
                id(file, "video_token_id", 151656, source), id(file, "vision_start_token_id", 151652, source));
    }

    /** The top level with text_config's keys over it (vision_config and text_config themselves left out). */
    private static ObjectNode merged(ObjectNode file, String source) {
        ObjectNode c = file.deepCopy();
        c.remove("vision_config");
        c.remove("text_config");
        JsonNode text = file.get("text_config");
        if (text != null && !text.isNull()) {
            if (!text.isObject()) {
                throw new UserError(source + ": text_config must be an object (the language model's keys), got " + text);
            }
            c.setAll((ObjectNode) text.deepCopy());
            c.put("tie_word_embeddings", file.path("tie_word_embeddings").asBoolean(false)
                    || text.path("tie_word_embeddings").asBoolean(false));
            c.put("model_type", file.path("model_type").asText());
        }
        return c;
    }

    /** rope_parameters (transformers 5) or rope_scaling (the hub's), or null. */
    private static JsonNode rope(ObjectNode c) {
        JsonNode r = c.hasNonNull("rope_parameters") ? c.get("rope_parameters") : c.get("rope_scaling");
        return r == null || r.isNull() || !r.isObject() ? null : r;
    }

    private static int id(ObjectNode file, String key, int absent, String source) {
        JsonNode v = file.get(key);
        if (v == null || v.isNull()) {
            return absent;
        }
        if (!v.canConvertToInt() || v.asInt() < 0) {
            throw new UserError(source + ": " + key + " must be a token id (a non-negative integer), got " + v);
        }
        return v.asInt();
    }
}
