package dev.sparksft.image;

import java.util.List;

/**
 * One image's Qwen2-VL input: {@code values} is pixel_values, (grid.patches(), patchDim) row-major
 * in float32, and {@code grid} its image_grid_thw row. A float[] rather than a libtorch tensor:
 * images are prepared where data is read (Spark executors, loader threads), which hold no native
 * memory to scope, and the trainer makes one [sum of patches, patchDim] tensor per batch from
 * {@link #concat} of the batch's images in order.
 */
public record PixelValues(float[] values, ImageSizing.Grid grid, int patchDim) {
    public PixelValues {
        if ((long) grid.patches() * patchDim != values.length) {
            throw new IllegalStateException(values.length + " values for " + grid + " patches of " + patchDim);
        }
    }

    /** The images' pixel_values one after another: (sum of patches, patchDim), as transformers concatenates them. */
    public static float[] concat(List<PixelValues> images) {
        long n = 0;
        for (PixelValues p : images) {
            if (p.patchDim != images.get(0).patchDim) {
                throw new IllegalStateException("images of one batch with patch sizes " + images.get(0).patchDim + " and " + p.patchDim);
            }
            n += p.values.length;
        }
        float[] out = new float[Math.toIntExact(n)];
        int at = 0;
        for (PixelValues p : images) {
            System.arraycopy(p.values, 0, out, at, p.values.length);
            at += p.values.length;
        }
        return out;
    }
}
