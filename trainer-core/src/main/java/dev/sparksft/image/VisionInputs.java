package dev.sparksft.image;

import org.bytedeco.pytorch.Tensor;

/**
 * The images of one batch, as a Qwen2-VL image processor gives them and the model's embed step takes them.
 *
 * <p>{@code pixelValues} is (patches, C x T x P x P): every image cut into patches of P x P pixels over T
 * frames (a still image is its frame repeated temporal_patch_size times), each patch flattened channel-major
 * (C, T, P, P), the patches of an image in the processor's order (merge blocks of spatial_merge_size^2
 * neighbours together), the images one after another in batch order: row 0's images left to right, then
 * row 1's, and so on. {@code gridThw[i]} is image i's (t, h, w) in patches (image_grid_thw); image i covers
 * t x h x w rows of pixelValues and its t x h x w / merge^2 image tokens (image_token_id) in input_ids.
 *
 * <p>A batch carries it ({@code data.Batch#images}); the model's embed step (model.CausalLm) takes it, with the
 * M-RoPE position ids the model computes from it; a batch without images carries null. Here, beside the image
 * processor, because batches (data) and the model both use it.
 */
public record VisionInputs(Tensor pixelValues, int[][] gridThw) {
    public VisionInputs {
        if (pixelValues == null || gridThw == null || gridThw.length == 0) {
            throw new IllegalArgumentException("VisionInputs needs pixel_values and at least one image grid; "
                    + "a batch without images passes no VisionInputs (null)");
        }
        long patches = 0;
        int[][] copy = new int[gridThw.length][];
        for (int i = 0; i < gridThw.length; i++) {
            int[] g = gridThw[i];
            if (g == null || g.length != 3 || g[0] <= 0 || g[1] <= 0 || g[2] <= 0) {
                throw new IllegalArgumentException("image_grid_thw[" + i + "] must be three positive patch counts "
                        + "(t, h, w), got " + java.util.Arrays.toString(g));
            }
            copy[i] = g.clone();
            patches += (long) g[0] * g[1] * g[2];
        }
        if (pixelValues.dim() != 2 || pixelValues.size(0) != patches) {
            throw new IllegalArgumentException("pixel_values must be (patches, C*T*P*P) with " + patches
                    + " patches (the sum of t*h*w over image_grid_thw), got shape "
                    + java.util.Arrays.toString(pixelValues.sizes().vec().get()));
        }
        gridThw = copy;
    }

    /** How many images. */
    public int numImages() {
        return gridThw.length;
    }

    /** Image {@code i}'s grid (t, h, w), a copy. */
    public int[] grid(int i) {
        return gridThw[i].clone();
    }

    /** The image tokens image {@code i} fills: t x h x w / merge^2. */
    public long numTokens(int i, int mergeSize) {
        return (long) gridThw[i][0] * gridThw[i][1] * gridThw[i][2] / ((long) mergeSize * mergeSize);
    }
}
