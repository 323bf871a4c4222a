package dev.sparksft.image;

import java.util.Arrays;

/**
 * A decoded image as Pillow holds it after {@code Image.open}: its mode, its size and its pixels,
 * interleaved by band, one byte a sample ({@code I;16}: two bytes, little-endian, as Pillow
 * stores it). The mode matters twice on LLaMA-Factory's path: {@code image.resize} treats "P" and
 * "1" with the nearest neighbour and "RGBA"/"LA" premultiplied ({@link PilResize}), and
 * {@code convert("RGB")} ({@link #toRgb}) maps each mode to RGB its own way.
 */
public final class PilImage {
    /** Pillow's modes that an image file can open as; {@code bands} samples a pixel. */
    public enum Mode {
        ONE("1", 1), L("L", 1), LA("LA", 2), P("P", 1), RGB("RGB", 3), RGBA("RGBA", 4), CMYK("CMYK", 4),
        I16("I;16", 2);

        public final String pilName;
        /** Bytes a pixel in {@link #data()}. */
        public final int bytesPerPixel;

        Mode(String pilName, int bytesPerPixel) {
            this.pilName = pilName;
            this.bytesPerPixel = bytesPerPixel;
        }
    }

    private final Mode mode;
    private final int width;
    private final int height;
    private final byte[] data;
    /** P only: 256 entries of 0xRRGGBB (entries the file did not define are black). */
    private final int[] palette;

    public PilImage(Mode mode, int width, int height, byte[] data, int[] palette) {
        if (width <= 0 || height <= 0 || (long) width * height * mode.bytesPerPixel != data.length) {
            throw new IllegalStateException(mode + " image " + width + "x" + height + " with " + data.length + " bytes");
        }
        if ((mode == Mode.P) != (palette != null) || (palette != null && palette.length != 256)) {
            throw new IllegalStateException("a P image needs a 256-entry palette, other modes none: " + mode);
        }
        this.mode = mode;
        this.width = width;
        this.height = height;
        this.data = data;
        this.palette = palette;
    }

    public static PilImage rgb(int width, int height, byte[] data) {
        return new PilImage(Mode.RGB, width, height, data, null);
    }

    public Mode mode() {
        return mode;
    }

    public int width() {
        return width;
    }

    public int height() {
        return height;
    }

    public ImageSizing.Size size() {
        return new ImageSizing.Size(width, height);
    }

    /** The pixels, row-major, bands interleaved (shared, not copied: do not change them). */
    public byte[] data() {
        return data;
    }

    int[] palette() {
        return palette;
    }

    /** The same image with other pixels of the same mode and palette. */
    PilImage withPixels(int newWidth, int newHeight, byte[] newData) {
        return new PilImage(mode, newWidth, newHeight, newData, palette);
    }

    /**
     * Pillow's {@code convert("RGB")} (libImaging/Convert.c): alpha is dropped, not composited (a
     * transparent pixel keeps the colour stored under it); L and LA repeat the grey; P looks up its
     * palette (a transparent index gives its palette colour); "1" gives 0 or 255; CMYK is
     * {@code cmyk2rgb}; I;16 is clipped to 255 ({@code I16_RGB}).
     */
    public PilImage toRgb() {
        if (mode == Mode.RGB) {
            return this;
        }
        int n = width * height;
        byte[] out = new byte[n * 3];
        for (int i = 0; i < n; i++) {
            int r;
            int g;
            int b;
            switch (mode) {
                case ONE, L, LA -> r = g = b = data[i * mode.bytesPerPixel] & 0xff;
                case P -> {
                    int rgb = palette[data[i] & 0xff];
                    r = rgb >>> 16 & 0xff;
                    g = rgb >>> 8 & 0xff;
                    b = rgb & 0xff;
                }
                case RGBA -> {
                    r = data[i * 4] & 0xff;
                    g = data[i * 4 + 1] & 0xff;
                    b = data[i * 4 + 2] & 0xff;
                }
                case CMYK -> {
                    int nk = 255 - (data[i * 4 + 3] & 0xff);
                    r = clip8(nk - mulDiv255(data[i * 4] & 0xff, nk));
                    g = clip8(nk - mulDiv255(data[i * 4 + 1] & 0xff, nk));
                    b = clip8(nk - mulDiv255(data[i * 4 + 2] & 0xff, nk));
                }
                case I16 -> r = g = b = data[i * 2 + 1] == 0 ? data[i * 2] & 0xff : 255;
                default -> throw new IllegalStateException("no RGB conversion for " + mode);
            }
            out[i * 3] = (byte) r;
            out[i * 3 + 1] = (byte) g;
            out[i * 3 + 2] = (byte) b;
        }
        return rgb(width, height, out);
    }

    /** Pillow's MULDIV255: a * b / 255 rounded, in integers. */
    static int mulDiv255(int a, int b) {
        int tmp = a * b + 128;
        return ((tmp >> 8) + tmp) >> 8;
    }

    static int clip8(int v) {
        return v <= 0 ? 0 : Math.min(v, 255);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof PilImage p && p.mode == mode && p.width == width && p.height == height
                && Arrays.equals(p.data, data) && Arrays.equals(p.palette, palette);
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(data);
    }

    @Override
    public String toString() {
        return mode.pilName + " " + width + "x" + height;
    }
}
