package dev.sparksft.image;

import java.util.ArrayList;
import java.util.List;

/**
 * The sizes an image passes through on its way to Qwen2-VL patches, as plain arithmetic on its
 * width and height, so that the data side can count an image's tokens from its header alone and
 * the processor resizes to exactly the same size.
 *
 * <ol>
 *   <li>LLaMA-Factory's regularization ({@code BasePlugin._preprocess_image} and
 *       {@code Qwen2VLPlugin._preprocess_image}): scaled down by sqrt(image_max_pixels / (w h)) when
 *       larger, up by sqrt(image_min_pixels / (w h)) when smaller (each side truncated, as Python's
 *       {@code int()}), both sides raised to 28 when one is shorter, and an aspect ratio above 200
 *       cut to 180.</li>
 *   <li>The image processor's {@code smart_resize}: both sides rounded (half to even, as Python's
 *       {@code round}) to a multiple of patch_size x merge_size, then scaled into
 *       [min_pixels, max_pixels] if the rounded area falls outside.</li>
 *   <li>The patch grid: (1, h / patch_size, w / patch_size) for an image (a single frame is repeated
 *       to temporal_patch_size frames, so its temporal grid is 1), and (t h w) / merge_size^2
 *       tokens in the language model, one per merged 2x2 group of patches.</li>
 * </ol>
 */
public final class ImageSizing {
    /** The side below which Qwen2-VL's plugin enlarges an image, and the aspect cap it applies. */
    private static final int QWEN_MIN_SIDE = 28;
    private static final int MAX_ASPECT = 200;
    private static final int CUT_ASPECT = 180;

    private ImageSizing() {}

    /** A width and height in pixels (PIL's order: width first). */
    public record Size(int width, int height) {
        public Size {
            if (width <= 0 || height <= 0) {
                throw new IllegalStateException("an image size must be positive, got " + width + "x" + height);
            }
        }

        long pixels() {
            return (long) width * height;
        }
    }

    /** An image's patch grid: temporal, height and width in patches (HF's image_grid_thw row). */
    public record Grid(int t, int h, int w) {
        public int patches() {
            return t * h * w;
        }

        /** The language model's tokens for this image: one per merge x merge group of patches. */
        public int tokens(int mergeSize) {
            return patches() / (mergeSize * mergeSize);
        }
    }

    /**
     * LLaMA-Factory's regularization as the resizes it makes: {@code inSourceMode}, the
     * image_max_pixels and image_min_pixels rules (BasePlugin, on the image as it was opened, before
     * its {@code convert("RGB")}), then {@code inRgb}, the Qwen2-VL plugin's side and aspect rules
     * (after it). Each is a PIL {@code image.resize}, so the processor makes them one by one:
     * one resize to the final size would give other pixels.
     */
    public record Regularization(List<Size> inSourceMode, List<Size> inRgb) {
        public Regularization {
            inSourceMode = List.copyOf(inSourceMode);
            inRgb = List.copyOf(inRgb);
        }
    }

    /** The resizes LLaMA-Factory makes to an image of {@code size} for a Qwen2-VL template, in order. */
    public static Regularization regularization(Size size, long imageMaxPixels, long imageMinPixels) {
        List<Size> inSourceMode = new ArrayList<>();
        List<Size> inRgb = new ArrayList<>();
        int width = size.width();
        int height = size.height();
        if (size.pixels() > imageMaxPixels) {
            double factor = Math.sqrt((double) imageMaxPixels / size.pixels());
            width = (int) (width * factor);
            height = (int) (height * factor);
            inSourceMode.add(new Size(width, height));
        }
        if ((long) width * height < imageMinPixels) {
            double factor = Math.sqrt((double) imageMinPixels / ((long) width * height));
            width = (int) (width * factor);
            height = (int) (height * factor);
            inSourceMode.add(new Size(width, height));
        }
        if (Math.min(width, height) < QWEN_MIN_SIDE) {
            width = Math.max(width, QWEN_MIN_SIDE);
            height = Math.max(height, QWEN_MIN_SIDE);
            inRgb.add(new Size(width, height));
        }
        if ((double) width / height > MAX_ASPECT) {
            width = height * CUT_ASPECT;
            inRgb.add(new Size(width, height));
        }
        if ((double) height / width > MAX_ASPECT) {
            height = width * CUT_ASPECT;
            inRgb.add(new Size(width, height));
        }
        return new Regularization(inSourceMode, inRgb);
    }

    /**
     * LLaMA-Factory's regularization of an image of {@code size} for a Qwen2-VL template: the size
     * the image is resized to (with PIL's bicubic filter) before the processor sees it; {@code size}
     * itself when no rule applies.
     */
    public static Size regularized(Size size, long imageMaxPixels, long imageMinPixels) {
        Regularization steps = regularization(size, imageMaxPixels, imageMinPixels);
        if (!steps.inRgb().isEmpty()) {
            return steps.inRgb().get(steps.inRgb().size() - 1);
        }
        return steps.inSourceMode().isEmpty() ? size : steps.inSourceMode().get(steps.inSourceMode().size() - 1);
    }

    /**
     * The processor's {@code smart_resize}: the size whose sides are multiples of {@code factor}
     * (patch_size x merge_size), closest to {@code size}'s aspect, with an area in [minPixels,
     * maxPixels].
     */
    public static Size smartResize(Size size, int factor, long minPixels, long maxPixels) {
        int height = size.height();
        int width = size.width();
        if ((double) Math.max(height, width) / Math.min(height, width) > MAX_ASPECT) {
            throw new IllegalStateException("aspect ratio above " + MAX_ASPECT + " reached smart_resize: " + size
                    + " (the regularization caps it first)");
        }
        long hBar = (long) Math.rint((double) height / factor) * factor;
        long wBar = (long) Math.rint((double) width / factor) * factor;
        if (hBar * wBar > maxPixels) {
            double beta = Math.sqrt((double) height * width / maxPixels);
            hBar = Math.max(factor, (long) Math.floor(height / beta / factor) * factor);
            wBar = Math.max(factor, (long) Math.floor(width / beta / factor) * factor);
        } else if (hBar * wBar < minPixels) {
            double beta = Math.sqrt((double) minPixels / ((double) height * width));
            hBar = (long) Math.ceil(height * beta / factor) * factor;
            wBar = (long) Math.ceil(width * beta / factor) * factor;
        }
        return new Size(Math.toIntExact(wBar), Math.toIntExact(hBar));
    }

    /** The patch grid of an image resized to {@code resized} (its sides multiples of patchSize). */
    public static Grid imageGrid(Size resized, int patchSize) {
        if (resized.width() % patchSize != 0 || resized.height() % patchSize != 0) {
            throw new IllegalStateException(resized + " is not a whole number of " + patchSize + "-pixel patches");
        }
        return new Grid(1, resized.height() / patchSize, resized.width() / patchSize);
    }
}
