package dev.sparksft.config;

import com.fasterxml.jackson.annotation.JsonProperty;
import java.util.ArrayList;
import java.util.List;

/**
 * Which model to start from (LLaMA-Factory's ModelArguments): a Hugging Face model directory and,
 * for LoRA, an optional PEFT adapter directory to continue training or to predict with; and
 * activation checkpointing, which LLaMA-Factory turns on unless disable_gradient_checkpointing
 * ({@code gradient_checkpointing}, Hugging Face's spelling, is accepted too); where and in what
 * shard size (GB, as Hugging Face counts: 10^9 bytes) {@code sft export} writes; and the tokens
 * added to the tokenizer ({@code add_tokens}, {@code add_special_tokens}: comma-separated, each
 * stripped, as LLaMA-Factory splits them) with {@code resize_vocab}, which grows the embedding and
 * the LM head to cover them ({@code model/VocabResize}).
 *
 * <p>On-the-fly quantization (LLaMA-Factory's QuantizationArguments, part of its ModelArguments):
 * {@code quantization_bit: 4} with {@code quantization_method: bnb} holds the frozen decoder-layer
 * linear weights in 4 bits as bitsandbytes does ({@code quantization_type} nf4 or fp4,
 * {@code double_quantization} of the absmax, on by default); 8 bits (LLM.int8), hqq and eetq are
 * refused. {@code quantization_device_map: auto} places an inference model over several GPUs in
 * LLaMA-Factory; here one device holds it, so it changes nothing, and training refuses it as
 * LLaMA-Factory does.
 *
 * <p>Images (LLaMA-Factory's ProcessorArguments): {@code image_max_pixels} and
 * {@code image_min_pixels} (768x768 and 32x32) bound an image's area before the model's image
 * processor resizes it ({@code image/ImageSizing.regularized}).
 */
public record ModelArguments(@JsonProperty("model_name_or_path") String modelNameOrPath,
                             @JsonProperty("adapter_name_or_path") String adapterNameOrPath,
                             @JsonProperty("export_dir") String exportDir,
                             @JsonProperty("export_size") Integer exportSize,
                             @JsonProperty("disable_gradient_checkpointing") Boolean disableGradientCheckpointing,
                             @JsonProperty("gradient_checkpointing") Boolean gradientCheckpointing,
                             @JsonProperty("resize_vocab") Boolean resizeVocab,
                             @JsonProperty("add_tokens") String addTokens,
                             @JsonProperty("add_special_tokens") String addSpecialTokens,
                             @JsonProperty("quantization_bit") Integer quantizationBit,
                             @JsonProperty("quantization_method") String quantizationMethod,
                             @JsonProperty("quantization_type") String quantizationType,
                             @JsonProperty("double_quantization") Boolean doubleQuantization,
                             @JsonProperty("quantization_device_map") String quantizationDeviceMap,
                             @JsonProperty("image_max_pixels") Integer imageMaxPixels,
                             @JsonProperty("image_min_pixels") Integer imageMinPixels) {
    public ModelArguments {
        resizeVocab = resizeVocab != null && resizeVocab;
        quantizationMethod = quantizationMethod == null ? "bnb" : quantizationMethod;
        quantizationType = quantizationType == null ? "nf4" : quantizationType;
        doubleQuantization = doubleQuantization == null || doubleQuantization;
        exportSize = exportSize == null ? 5 : exportSize;   // GB per shard of an export, LLaMA-Factory's default
        imageMaxPixels = imageMaxPixels == null ? 768 * 768 : imageMaxPixels;   // ProcessorArguments' defaults
        imageMinPixels = imageMinPixels == null ? 32 * 32 : imageMinPixels;
        List<String> problems = new ArrayList<>();
        if (imageMinPixels < 1) {
            problems.add("image_min_pixels must be >= 1, got " + imageMinPixels);
        }
        if (imageMaxPixels < imageMinPixels) {
            problems.add("image_max_pixels (" + imageMaxPixels + ") cannot be smaller than image_min_pixels ("
                    + imageMinPixels + "); raise image_max_pixels or lower image_min_pixels");
        }
        if (exportSize < 1) {
            problems.add("export_size must be >= 1 (GB per file of the exported model), got " + exportSize);
        }
        if (disableGradientCheckpointing != null && gradientCheckpointing != null
                && disableGradientCheckpointing == gradientCheckpointing) {
            problems.add("disable_gradient_checkpointing: " + disableGradientCheckpointing + " contradicts "
                    + "gradient_checkpointing: " + gradientCheckpointing + "; set only one of them");
        }
        if (modelNameOrPath == null || modelNameOrPath.isBlank()) {
            problems.add("model_name_or_path is required: the directory of a Hugging Face model (config.json, "
                    + "*.safetensors, tokenizer.json); make one with `scripts/sft make-tiny-model`");
        }
        if (adapterNameOrPath != null && adapterNameOrPath.contains(",")) {
            problems.add("adapter_name_or_path: one adapter directory is supported, got '" + adapterNameOrPath
                    + "'; merge the others first with `scripts/sft export`");
        }
        quantizationProblems(quantizationBit, quantizationMethod, quantizationType, quantizationDeviceMap, problems);
        ConfigProblems.throwIfAny(problems);
    }

    /** add_tokens as LLaMA-Factory splits it: at commas, each token stripped; empty when unset. */
    public List<String> tokensToAdd() {
        return split(addTokens);
    }

    /** add_special_tokens as LLaMA-Factory splits it. */
    public List<String> specialTokensToAdd() {
        return split(addSpecialTokens);
    }

    private static List<String> split(String tokens) {
        if (tokens == null) {
            return List.of();
        }
        return java.util.Arrays.stream(tokens.split(",", -1)).map(String::strip).toList();
    }

    private static void quantizationProblems(Integer bit, String method, String type, String deviceMap,
                                             List<String> problems) {
        if (!List.of("bnb", "hqq", "eetq").contains(method)) {
            problems.add("quantization_method must be bnb, hqq or eetq, got '" + method + "'");
        } else if (bit != null && !method.equals("bnb")) {
            problems.add("quantization_method: " + method + " is not supported: spark-sft quantizes with "
                    + "bitsandbytes' 4-bit algorithm only (" + method.toUpperCase(java.util.Locale.ROOT) + " kernels are not "
                    + "implemented); set quantization_method: bnb with quantization_bit: 4");
        }
        if (bit != null && bit == 8 && method.equals("bnb")) {
            problems.add("quantization_bit: 8 is not supported: bitsandbytes' LLM.int8 (8-bit weights with fp16 "
                    + "outlier decomposition) is not implemented; set quantization_bit: 4 (NF4, about 0.5 bytes per weight)");
        } else if (bit != null && bit != 4 && method.equals("bnb")) {
            problems.add("quantization_bit: " + bit + " is not supported: bitsandbytes only accepts 4-bit or 8-bit "
                    + "quantization; set quantization_bit: 4");
        }
        if (!List.of("nf4", "fp4").contains(type)) {
            problems.add("quantization_type must be nf4 or fp4, got '" + type + "'");
        }
        if (deviceMap != null && !deviceMap.equals("auto")) {
            problems.add("quantization_device_map must be auto or unset, got '" + deviceMap + "'");
        }
    }

    /** quantization_bit is set (to 4, the only value that passes validation). */
    public boolean quantized() {
        return quantizationBit != null;
    }

    /**
     * The rules that tie quantization to the other sections, LLaMA-Factory's (hparams/parser.py),
     * with its wording first: only LoRA (and OFT) train over a quantized model; neither PiSSA
     * initialisation, vocabulary resizing nor a second, new adapter is possible over 4-bit weights;
     * fp8 excludes it; a device map is for inference only. {@code values} are the raw keys, so
     * keys another section owns are read as the user wrote them.
     */
    static List<String> quantizationProblems(ModelArguments m, String finetuningType, boolean doTrain, boolean fp8,
                                             com.fasterxml.jackson.databind.JsonNode values) {
        List<String> p = new ArrayList<>();
        if (!m.quantized()) {
            return p;
        }
        String q = "quantization_bit: " + m.quantizationBit();
        if (!List.of("lora", "oft").contains(finetuningType)) {
            p.add(q + " with finetuning_type: " + finetuningType + ": Quantization is only compatible with the LoRA or "
                    + "OFT method; set finetuning_type: lora, or remove quantization_bit to train " + finetuningType);
        }
        if (values.path("pissa_init").asBoolean(false)) {
            p.add(q + " with pissa_init: true: PiSSA cannot be initialised over a quantized model (LLaMA-Factory: "
                    + "use scripts/pissa_init.py first); set pissa_init: false or remove quantization_bit");
        }
        if (m.resizeVocab()) {
            p.add(q + " with resize_vocab: true: Cannot resize embedding layers of a quantized model; set "
                    + "resize_vocab: false or remove quantization_bit");
        }
        if (m.adapterNameOrPath() != null && values.path("create_new_adapter").asBoolean(false)) {
            p.add(q + " with create_new_adapter: true: Cannot create new adapter upon a quantized model; merge "
                    + m.adapterNameOrPath() + " first (scripts/sft export without quantization_bit) or set "
                    + "create_new_adapter: false");
        }
        if (fp8) {
            p.add(q + " with fp8: true: FP8 training is not compatible with quantization; set fp8: false or "
                    + "remove quantization_bit");
        }
        if (doTrain && "auto".equals(m.quantizationDeviceMap())) {
            p.add("quantization_device_map: auto with do_train: true: Cannot use device map for quantized models in "
                    + "training; remove quantization_device_map");
        }
        return p;
    }

    /** Activation checkpointing per decoder layer: on unless switched off by either key. */
    public boolean activationCheckpointing() {
        if (disableGradientCheckpointing != null) {
            return !disableGradientCheckpointing;
        }
        return gradientCheckpointing == null || gradientCheckpointing;
    }
}
