package dev.sparksft.image;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sparksft.JsonFiles;
import dev.sparksft.UserError;
import dev.sparksft.runtime.DiskWrites;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A model's {@code preprocessor_config.json} for Qwen2-VL / Qwen2.5-VL's image processor
 * ({@code Qwen2VLImageProcessor}, its {@code Fast} variant), with transformers' defaults for keys
 * it leaves out. min_pixels / max_pixels win over size.shortest_edge / size.longest_edge, as in
 * the processor's {@code __init__}. {@code source} is the file's bytes as read (ISO-8859-1, one
 * char a byte, so writing it back gives the same bytes), null for a config built in code.
 */
public record ImageProcessorConfig(
        long minPixels, long maxPixels, int patchSize, int temporalPatchSize, int mergeSize,
        float[] imageMean, float[] imageStd, boolean doResize, boolean doRescale, double rescaleFactor,
        boolean doNormalize, boolean doConvertRgb, String source) implements java.io.Serializable {
    public static final String FILE = "preprocessor_config.json";
    /** OPENAI_CLIP_MEAN and OPENAI_CLIP_STD, the processor's defaults. */
    public static final double[] CLIP_MEAN = {0.48145466, 0.4578275, 0.40821073};
    public static final double[] CLIP_STD = {0.26862954, 0.26130258, 0.27577711};
    private static final List<String> TYPES = List.of("Qwen2VLImageProcessor", "Qwen2VLImageProcessorFast");
    /** PILImageResampling.BICUBIC, the only filter this processor resizes with. */
    private static final int BICUBIC = 3;
    private static final ObjectMapper JSON = new ObjectMapper();

    public ImageProcessorConfig {
        if (patchSize <= 0 || temporalPatchSize <= 0 || mergeSize <= 0 || minPixels <= 0 || minPixels > maxPixels
                || imageMean.length != 3 || imageStd.length != 3) {
            throw new IllegalStateException("invalid image processor settings (checked where they are read)");
        }
        imageMean = imageMean.clone();
        imageStd = imageStd.clone();
    }

    /** The processor's defaults: Qwen2-VL's patches, size {56*56, 28*28*1280}, CLIP's mean and std. */
    public static ImageProcessorConfig defaults() {
        return new ImageProcessorConfig(56 * 56, 28 * 28 * 1280, 14, 2, 2, floats(CLIP_MEAN), floats(CLIP_STD),
                true, true, 1 / 255.0, true, true, null);
    }

    /** The model's {@code preprocessor_config.json} from {@code modelDir}; a missing one is a UserError. */
    public static ImageProcessorConfig read(Path modelDir) throws IOException {
        Path file = modelDir.resolve(FILE);
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (NoSuchFileException e) {
            throw new UserError(file + " does not exist: a vision model needs its image processor's " + FILE
                    + "; copy it from the model's Hugging Face repository");
        }
        return parse(bytes, file.toString());
    }

    /** The config in {@code bytes}, read from {@code file} (which errors name). */
    public static ImageProcessorConfig parse(byte[] bytes, String file) throws IOException {
        JsonNode root = JsonFiles.parse(file, new java.io.ByteArrayInputStream(bytes));
        if (!root.isObject()) {
            throw new UserError(file + " must hold a JSON object; restore it from the model's repository");
        }
        List<String> problems = new ArrayList<>();
        JsonNode type = root.get("image_processor_type");
        if (type != null && !TYPES.contains(type.asText())) {
            problems.add("image_processor_type is " + type + ": spark-sft has Qwen2-VL's image processor only ("
                    + String.join(", ", TYPES) + "); use a Qwen2-VL or Qwen2.5-VL model's " + FILE);
        }
        JsonNode resample = root.get("resample");
        if (resample != null && !(resample.isIntegralNumber() && resample.asInt() == BICUBIC)) {
            problems.add("resample is " + resample + ": only 3 (BICUBIC) is implemented; remove the key or set it to 3");
        }
        ImageProcessorConfig d = defaults();
        JsonNode size = root.path("size");
        long minPixels = longValue(root, "min_pixels", longValue(size, "shortest_edge", d.minPixels, problems), problems);
        long maxPixels = longValue(root, "max_pixels", longValue(size, "longest_edge", d.maxPixels, problems), problems);
        if (minPixels <= 0 || minPixels > maxPixels) {
            problems.add("min_pixels " + minPixels + " and max_pixels " + maxPixels + " must satisfy 0 < min_pixels <= max_pixels");
        }
        int patchSize = positive(root, "patch_size", d.patchSize, problems);
        int temporal = positive(root, "temporal_patch_size", d.temporalPatchSize, problems);
        int merge = positive(root, "merge_size", d.mergeSize, problems);
        float[] mean = triple(root, "image_mean", CLIP_MEAN, false, problems);
        float[] std = triple(root, "image_std", CLIP_STD, true, problems);
        double rescale = root.has("rescale_factor") ? root.get("rescale_factor").asDouble() : d.rescaleFactor;
        if (!problems.isEmpty()) {
            throw new UserError(file + ": " + String.join("; ", problems));
        }
        return new ImageProcessorConfig(minPixels, maxPixels, patchSize, temporal, merge, mean, std,
                bool(root, "do_resize", true), bool(root, "do_rescale", true), rescale, bool(root, "do_normalize", true),
                bool(root, "do_convert_rgb", true), new String(bytes, StandardCharsets.ISO_8859_1));
    }

    /**
     * Writes {@code preprocessor_config.json} into {@code dir} (as the trainer does with every
     * checkpoint and the final model): the source file's bytes when there is one, otherwise these
     * settings under transformers' key names.
     */
    public void save(Path dir) throws IOException {
        Path file = dir.resolve(FILE);
        byte[] bytes = source != null ? source.getBytes(StandardCharsets.ISO_8859_1) : toJson().getBytes(StandardCharsets.UTF_8);
        try {
            Files.write(file, bytes);
        } catch (IOException e) {
            throw DiskWrites.failed(file, e);
        }
    }

    /** These settings as a Qwen2VLImageProcessor's JSON. */
    String toJson() throws IOException {
        ObjectNode o = JSON.createObjectNode();
        o.put("do_convert_rgb", doConvertRgb);
        o.put("do_normalize", doNormalize);
        o.put("do_rescale", doRescale);
        o.put("do_resize", doResize);
        o.putArray("image_mean").addAll(doubles(imageMean));
        o.put("image_processor_type", "Qwen2VLImageProcessor");
        o.putArray("image_std").addAll(doubles(imageStd));
        o.put("max_pixels", maxPixels);
        o.put("merge_size", mergeSize);
        o.put("min_pixels", minPixels);
        o.put("patch_size", patchSize);
        o.put("processor_class", "Qwen2VLProcessor");
        o.put("resample", BICUBIC);
        o.put("rescale_factor", rescaleFactor);
        o.putObject("size").put("longest_edge", maxPixels).put("shortest_edge", minPixels);
        o.put("temporal_patch_size", temporalPatchSize);
        return JSON.writerWithDefaultPrettyPrinter().writeValueAsString(o) + "\n";
    }

    private static List<JsonNode> doubles(float[] values) {
        List<JsonNode> out = new ArrayList<>();
        for (float v : values) {
            out.add(JSON.getNodeFactory().numberNode(Double.parseDouble(Float.toString(v))));
        }
        return out;
    }

    private static long longValue(JsonNode node, String key, long fallback, List<String> problems) {
        JsonNode v = node.get(key);
        if (v == null || v.isNull()) {
            return fallback;
        }
        if (!v.canConvertToLong() || !v.isIntegralNumber()) {
            problems.add(key + " is " + v + ": it must be a whole number of pixels");
            return fallback;
        }
        return v.asLong();
    }

    private static int positive(JsonNode node, String key, int fallback, List<String> problems) {
        JsonNode v = node.get(key);
        if (v == null || v.isNull()) {
            return fallback;
        }
        if (!v.isIntegralNumber() || v.asLong() <= 0 || v.asLong() > 1024) {
            problems.add(key + " is " + v + ": it must be a positive whole number");
            return fallback;
        }
        return v.asInt();
    }

    private static float[] triple(JsonNode node, String key, double[] fallback, boolean nonZero, List<String> problems) {
        JsonNode v = node.get(key);
        if (v == null || v.isNull()) {
            return floats(fallback);
        }
        double[] out = new double[3];
        if (v.isNumber()) {
            java.util.Arrays.fill(out, v.asDouble()); // one value for every channel, as transformers allows
        } else if (v.isArray() && v.size() == 3 && v.get(0).isNumber() && v.get(1).isNumber() && v.get(2).isNumber()) {
            for (int i = 0; i < 3; i++) {
                out[i] = v.get(i).asDouble();
            }
        } else {
            problems.add(key + " is " + v + ": it must be 3 numbers, one per RGB channel");
            return floats(fallback);
        }
        for (double x : out) {
            if (!Double.isFinite(x) || (nonZero && x == 0)) {
                problems.add(key + " is " + v + ": each value must be finite" + (nonZero ? " and non-zero" : ""));
                break;
            }
        }
        return floats(out);
    }

    private static boolean bool(JsonNode node, String key, boolean fallback) {
        JsonNode v = node.get(key);
        return v == null || v.isNull() ? fallback : v.asBoolean();
    }

    private static float[] floats(double[] values) {
        float[] out = new float[values.length];
        for (int i = 0; i < values.length; i++) {
            out[i] = (float) values[i]; // numpy's np.array(mean, dtype=float32)
        }
        return out;
    }

    /**
     * The patch grid of an image of {@code size}: LLaMA-Factory's regularization by image_max_pixels
     * and image_min_pixels, then smart_resize to this processor's factor and bounds; what the
     * template counts an image's tokens from, from its header alone.
     */
    public ImageSizing.Grid grid(ImageSizing.Size size, long imageMaxPixels, long imageMinPixels) {
        ImageSizing.Size regularized = ImageSizing.regularized(size, imageMaxPixels, imageMinPixels);
        ImageSizing.Size resized = ImageSizing.smartResize(regularized, patchSize * mergeSize, minPixels, maxPixels);
        return ImageSizing.imageGrid(resized, patchSize);
    }
}
