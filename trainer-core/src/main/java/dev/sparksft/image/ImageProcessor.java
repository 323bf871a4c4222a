package dev.sparksft.image;

import dev.sparksft.UserError;

/**
 * Qwen2-VL / Qwen2.5-VL's image processor on LLaMA-Factory's path, from image bytes to
 * pixel_values and image_grid_thw:
 * <ol>
 *   <li>decode as Pillow's {@code Image.open} ({@link ImageDecoder});</li>
 *   <li>LLaMA-Factory's regularization ({@link ImageSizing#regularization}): the image_max_pixels /
 *       image_min_pixels resizes in the image's own mode (a palette image resized with the nearest
 *       neighbour, RGBA premultiplied), then {@code convert("RGB")}, which drops alpha without
 *       compositing it on any background (so transformers' convert_rgb never sees RGBA), then
 *       Qwen2-VL's side and aspect resizes; each a PIL bicubic {@code image.resize}
 *       ({@link PilResize});</li>
 *   <li>transformers' {@code Qwen2VLImageProcessorPil}: smart_resize with PIL's BICUBIC, rescale
 *       ({@code float32(x * rescale_factor)}, the product in double), normalize
 *       ({@code (x - mean) / std} in float32), the frame repeated temporal_patch_size times and the
 *       patches flattened in transformers' order.</li>
 * </ol>
 * The torchvision processor ({@code Qwen2VLImageProcessorFast}, transformers' default when
 * torchvision is installed) resizes with torch's antialiased bicubic instead, which differs from
 * PIL's by a few levels per pixel; this class gives the PIL backend's values for both types.
 */
public final class ImageProcessor {
    /** LLaMA-Factory's image_max_pixels and image_min_pixels defaults. */
    public static final long DEFAULT_IMAGE_MAX_PIXELS = 768 * 768;
    public static final long DEFAULT_IMAGE_MIN_PIXELS = 32 * 32;

    private final ImageProcessorConfig config;
    private final long imageMaxPixels;
    private final long imageMinPixels;

    public ImageProcessor(ImageProcessorConfig config, long imageMaxPixels, long imageMinPixels) {
        if (imageMaxPixels <= 0 || imageMinPixels <= 0) {
            throw new IllegalStateException("image_max_pixels and image_min_pixels are positive (checked in the config)");
        }
        this.config = config;
        this.imageMaxPixels = imageMaxPixels;
        this.imageMinPixels = imageMinPixels;
    }

    public ImageProcessorConfig config() {
        return config;
    }

    /** The image file's bytes, read from {@code path} (which errors name), as model input. */
    public PixelValues process(byte[] bytes, String path) {
        return process(ImageDecoder.decode(bytes, path), path);
    }

    /** An image as Pillow opened it, as model input. */
    public PixelValues process(PilImage image, String path) {
        return patches(processorInput(regularize(image)), path);
    }

    /** LLaMA-Factory's {@code _preprocess_image} for a Qwen2-VL template: an RGB image. */
    public PilImage regularize(PilImage image) {
        ImageSizing.Regularization steps = ImageSizing.regularization(image.size(), imageMaxPixels, imageMinPixels);
        for (ImageSizing.Size s : steps.inSourceMode()) {
            image = PilResize.resize(image, s.width(), s.height());
        }
        image = image.toRgb();
        for (ImageSizing.Size s : steps.inRgb()) {
            image = PilResize.resize(image, s.width(), s.height());
        }
        return image;
    }

    /** The processor's resize of an RGB image: smart_resize to multiples of patch_size x merge_size. */
    public PilImage processorInput(PilImage rgb) {
        if (!config.doResize()) {
            return rgb;
        }
        ImageSizing.Size to = ImageSizing.smartResize(rgb.size(), config.patchSize() * config.mergeSize(),
                config.minPixels(), config.maxPixels());
        return PilResize.resize(rgb, to.width(), to.height());
    }

    /** Rescale, normalize and the patch flatten of transformers' {@code patchify}. */
    PixelValues patches(PilImage rgb, String path) {
        int p = config.patchSize();
        int m = config.mergeSize();
        int t = config.temporalPatchSize();
        int w = rgb.width();
        int h = rgb.height();
        if (w % (p * m) != 0 || h % (p * m) != 0) {
            throw new UserError(path + ": with do_resize false the image must be a multiple of patch_size x merge_size ("
                    + p * m + ") on both sides, got " + w + "x" + h + "; set do_resize: true in " + ImageProcessorConfig.FILE);
        }
        float[] chw = normalized(rgb);
        int gridH = h / p;
        int gridW = w / p;
        int patchDim = 3 * t * p * p;
        float[] out = new float[gridH * gridW * patchDim];
        // (gh/m, gw/m, m, m) patches, each (C, T, P, P): patches.transpose(1, 4, 2, 5, 0, 3, 6), T broadcast
        int row = 0;
        for (int bh = 0; bh < gridH / m; bh++) {
            for (int bw = 0; bw < gridW / m; bw++) {
                for (int mh = 0; mh < m; mh++) {
                    for (int mw = 0; mw < m; mw++) {
                        int y0 = (bh * m + mh) * p;
                        int x0 = (bw * m + mw) * p;
                        int at = row * patchDim;
                        for (int c = 0; c < 3; c++) {
                            for (int f = 0; f < t; f++) {
                                for (int py = 0; py < p; py++) {
                                    System.arraycopy(chw, (c * h + y0 + py) * w + x0, out, at, p);
                                    at += p;
                                }
                            }
                        }
                        row++;
                    }
                }
            }
        }
        return new PixelValues(out, new ImageSizing.Grid(1, gridH, gridW), patchDim);
    }

    /** (C, H, W) float32: {@code float32(x * rescale_factor)}, then {@code (x - mean) / std} in float32. */
    float[] normalized(PilImage rgb) {
        byte[] data = rgb.data();
        int n = rgb.width() * rgb.height();
        float[] out = new float[3 * n];
        float[] mean = config.imageMean();
        float[] std = config.imageStd();
        for (int i = 0; i < n; i++) {
            for (int c = 0; c < 3; c++) {
                int v = data[i * 3 + c] & 0xff;
                float x = config.doRescale() ? (float) (v * config.rescaleFactor()) : v;
                if (config.doNormalize()) {
                    x = (x - mean[c]) / std[c];
                }
                out[c * n + i] = x;
            }
        }
        return out;
    }
}
