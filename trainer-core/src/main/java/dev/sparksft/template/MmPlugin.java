package dev.sparksft.template;

/**
 * A template's multimodal plugin as LLaMA-Factory registers it ({@code get_mm_plugin(name,
 * image_token=..., video_token=...)} in data/template.py): which plugin rewrites the
 * {@code <image>} placeholders, and its tokens. spark-sft implements the {@code qwen2_vl} plugin
 * for images ({@link ImageTokens}); its videos are refused.
 */
public record MmPlugin(String name, String imageToken, String videoToken, String visionBos, String visionEos)
        implements java.io.Serializable {
    /** Qwen2VLPlugin with Qwen2-VL's tokens (the qwen2_vl template's registration). */
    public static final MmPlugin QWEN2_VL = new MmPlugin("qwen2_vl", "<|image_pad|>", "<|video_pad|>",
            "<|vision_start|>", "<|vision_end|>");
}
