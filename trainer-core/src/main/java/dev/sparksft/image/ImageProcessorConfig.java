package dev.sparksft.image;

import com.fasterxml.jackson.databind.JsonNode;
import dev.sparksft.JsonFiles;
import dev.sparksft.UserError;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The numbers of a Qwen2-VL model's {@code preprocessor_config.json} that decide an image's size
 * and patch grid, read as transformers' {@code Qwen2VLImageProcessor} reads them: {@code size}'s
 * shortest_edge and longest_edge are the pixel bounds (class defaults 56x56 and 28x28x1280),
 * overridden by {@code min_pixels} and {@code max_pixels} where the file has them (Qwen2-VL's hub
 * files do: 3136 and 12845056); patch_size 14, temporal_patch_size 2 and merge_size 2 unless given.
 */
public record ImageProcessorConfig(int patchSize, int temporalPatchSize, int mergeSize, long minPixels,
                                   long maxPixels) implements java.io.Serializable {
    public static final String FILE = "preprocessor_config.json";

    public ImageProcessorConfig {
        if (patchSize < 1 || temporalPatchSize < 1 || mergeSize < 1 || minPixels < 1 || maxPixels < minPixels) {
            throw new UserError(FILE + ": patch_size " + patchSize + ", temporal_patch_size " + temporalPatchSize
                    + ", merge_size " + mergeSize + ", min_pixels " + minPixels + ", max_pixels " + maxPixels
                    + " are not a valid Qwen2-VL image processor; copy preprocessor_config.json from the model's repository");
        }
    }

    /** The model directory's {@code preprocessor_config.json}. */
    public static ImageProcessorConfig read(Path modelDir) throws IOException {
        Path file = modelDir.resolve(FILE);
        if (!Files.isRegularFile(file)) {
            throw new UserError("model " + modelDir + " has no " + FILE + ", which an image template needs (its "
                    + "patch_size, merge_size, min_pixels and max_pixels count an image's tokens); copy it from the "
                    + "model's repository");
        }
        return of(JsonFiles.read(file));
    }

    /** From the JSON of a preprocessor_config.json. */
    public static ImageProcessorConfig of(JsonNode c) {
        JsonNode size = c.path("size");
        long min = size.path("shortest_edge").asLong(56 * 56);
        long max = size.path("longest_edge").asLong(28 * 28 * 1280);
        if (c.hasNonNull("min_pixels")) {
            min = c.get("min_pixels").asLong();
        }
        if (c.hasNonNull("max_pixels")) {
            max = c.get("max_pixels").asLong();
        }
        return new ImageProcessorConfig(c.path("patch_size").asInt(14), c.path("temporal_patch_size").asInt(2),
                c.path("merge_size").asInt(2), min, max);
    }

    /**
     * The patch grid of an image of {@code size}: LLaMA-Factory's regularization by image_max_pixels
     * and image_min_pixels, then smart_resize to this processor's factor and bounds.
     */
    public ImageSizing.Grid grid(ImageSizing.Size size, long imageMaxPixels, long imageMinPixels) {
        ImageSizing.Size regularized = ImageSizing.regularized(size, imageMaxPixels, imageMinPixels);
        ImageSizing.Size resized = ImageSizing.smartResize(regularized, patchSize * mergeSize, minPixels, maxPixels);
        return ImageSizing.imageGrid(resized, patchSize);
    }
}
