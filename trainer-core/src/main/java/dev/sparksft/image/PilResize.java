package dev.sparksft.image;

/**
 * Pillow's {@code Image.resize((w, h))} with its default filter, BICUBIC, byte for byte (Pillow
 * 11.3: {@code Image.resize}, {@code _imaging.c _resize}, {@code libImaging/Resample.c}, the
 * nearest-neighbour scale of {@code Geometry.c}).
 *
 * <ul>
 *   <li>"P" and "1" images are resized with the nearest neighbour whatever the filter (Pillow
 *       forces it: interpolated palette indices mean nothing).</li>
 *   <li>"RGBA" and "LA" are premultiplied by alpha ("RGBa", "La"), resampled, and divided back, so
 *       a transparent pixel's colour does not bleed into its neighbours.</li>
 *   <li>Everything else goes through {@code ImagingResample}: a separable convolution with the
 *       bicubic kernel (a = -0.5), whose support is widened by the downscale factor (antialiasing),
 *       coefficients normalised to sum 1 and, for 8-bit samples, turned into 22-bit fixed point
 *       ({@code PRECISION_BITS}); the horizontal pass runs over only the rows the vertical pass
 *       reads, then the vertical pass; each pass rounds and clips to 0..255. I;16 samples use the
 *       double coefficients and {@code ROUND_UP}.</li>
 * </ul>
 */
public final class PilResize {
    /** 32 - 8 - 2: 8 bits of result, 2 for the overshoot of the negative lobes. */
    private static final int PRECISION_BITS = 32 - 8 - 2;
    private static final double BICUBIC_SUPPORT = 2.0;

    private PilResize() {}

    /** {@code image.resize((width, height))} as Pillow does it for {@code image}'s mode. */
    public static PilImage resize(PilImage image, int width, int height) {
        if (width < 1 || height < 1) {
            throw new IllegalStateException("height and width must be > 0, got " + width + "x" + height);
        }
        if (image.width() == width && image.height() == height) {
            return image; // Pillow returns a copy; PilImage is not changed in place
        }
        byte[] in = image.data();
        int w = image.width();
        int h = image.height();
        byte[] out = switch (image.mode()) {
            case ONE, P -> nearest(in, w, h, 1, width, height);
            case LA, RGBA -> {
                int bands = image.mode().bytesPerPixel;
                yield unpremultiply(bicubic8(premultiply(in, bands), w, h, bands, width, height), bands);
            }
            case L, RGB, CMYK -> bicubic8(in, w, h, image.mode().bytesPerPixel, width, height);
            case I16 -> bicubic16(in, w, h, width, height);
        };
        return image.withPixels(width, height, out);
    }

    /** Coefficients of one axis: for output i, {@code size[i]} weights from input {@code min[i]}. */
    record Coefficients(int ksize, int[] min, int[] size, double[] weights) {}

    /** {@code precompute_coeffs} for the bicubic filter over the whole axis (box 0..inSize). */
    static Coefficients coefficients(int inSize, int outSize) {
        double scale = (double) (float) inSize / outSize; // (double)(in1 - in0) / outSize, box in floats
        double filterscale = Math.max(scale, 1.0);
        double support = BICUBIC_SUPPORT * filterscale;
        int ksize = (int) Math.ceil(support) * 2 + 1;
        double[] kk = new double[outSize * ksize];
        int[] mins = new int[outSize];
        int[] sizes = new int[outSize];
        double ss = 1.0 / filterscale;
        for (int xx = 0; xx < outSize; xx++) {
            double center = (xx + 0.5) * scale;
            double ww = 0.0;
            int xmin = Math.max((int) (center - support + 0.5), 0);
            int xmax = Math.min((int) (center + support + 0.5), inSize) - xmin;
            int k = xx * ksize;
            for (int x = 0; x < xmax; x++) {
                double w = bicubic((x + xmin - center + 0.5) * ss);
                kk[k + x] = w;
                ww += w;
            }
            for (int x = 0; x < xmax; x++) {
                if (ww != 0.0) {
                    kk[k + x] /= ww;
                }
            }
            mins[xx] = xmin;
            sizes[xx] = xmax;
        }
        return new Coefficients(ksize, mins, sizes, kk);
    }

    /** The bicubic convolution kernel with a = -0.5, as {@code bicubic_filter} writes it. */
    static double bicubic(double x) {
        final double a = -0.5;
        if (x < 0.0) {
            x = -x;
        }
        if (x < 1.0) {
            return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
        }
        if (x < 2.0) {
            return (((x - 5) * x + 8) * x - 4) * a;
        }
        return 0.0;
    }

    /** {@code normalize_coeffs_8bpc}: weights in fixed point, rounded half away from zero. */
    private static int[] fixedPoint(double[] weights) {
        int[] out = new int[weights.length];
        for (int i = 0; i < weights.length; i++) {
            double w = weights[i];
            out[i] = w < 0 ? (int) (-0.5 + w * (1 << PRECISION_BITS)) : (int) (0.5 + w * (1 << PRECISION_BITS));
        }
        return out;
    }

    /** {@code clip8}: the fixed-point sum's integer part clipped to a byte. */
    private static byte clip8(int ss) {
        int v = ss >> PRECISION_BITS;
        return (byte) (v < 0 ? 0 : Math.min(v, 255));
    }

    /**
     * The input rows the vertical pass reads: with a horizontal pass first, only rows first ..
     * first + count - 1 go through it (ImagingResampleInner crops its temporary image to them),
     * and each output row's window starts {@code mins[i]} rows into them; without one, the
     * windows' own first rows over all h.
     */
    private record RowsRead(int first, int count, int[] mins) {
        static RowsRead of(Coefficients vert, int h, int outH, boolean cropped) {
            int[] mins = vert.min().clone();
            if (!cropped) {
                return new RowsRead(0, h, mins);
            }
            int first = mins[0];
            int last = mins[outH - 1] + vert.size()[outH - 1];
            for (int i = 0; i < outH; i++) {
                mins[i] -= first;
            }
            return new RowsRead(first, last - first, mins);
        }
    }

    /** {@code ImagingResampleInner} with the 8-bit passes; {@code in} is (h, w, bands). */
    static byte[] bicubic8(byte[] in, int w, int h, int bands, int outW, int outH) {
        Coefficients horiz = coefficients(w, outW);
        Coefficients vert = coefficients(h, outH);
        RowsRead rows = RowsRead.of(vert, h, outH, outW != w);
        int[] vertMin = rows.mins();
        byte[] temp = in;
        if (outW != w) {
            // only the rows the vertical pass reads: (rows.count(), outW, bands)
            int first = rows.first();
            int tempH = rows.count();
            temp = new byte[tempH * outW * bands];
            int[] k = fixedPoint(horiz.weights());
            for (int yy = 0; yy < tempH; yy++) {
                int rowIn = (yy + first) * w * bands;
                int rowOut = yy * outW * bands;
                for (int xx = 0; xx < outW; xx++) {
                    int xmin = horiz.min()[xx];
                    int xmax = horiz.size()[xx];
                    int kOff = xx * horiz.ksize();
                    for (int b = 0; b < bands; b++) {
                        int ss = 1 << (PRECISION_BITS - 1);
                        for (int x = 0; x < xmax; x++) {
                            ss += (in[rowIn + (x + xmin) * bands + b] & 0xff) * k[kOff + x];
                        }
                        temp[rowOut + xx * bands + b] = clip8(ss);
                    }
                }
            }
        }
        if (outH == h) {
            return temp;
        }
        byte[] out = new byte[outH * outW * bands];
        int[] k = fixedPoint(vert.weights());
        int rowLen = outW * bands;
        for (int yy = 0; yy < outH; yy++) {
            int ymin = vertMin[yy];
            int ymax = vert.size()[yy];
            int kOff = yy * vert.ksize();
            for (int i = 0; i < rowLen; i++) {
                int ss = 1 << (PRECISION_BITS - 1);
                for (int y = 0; y < ymax; y++) {
                    ss += (temp[(y + ymin) * rowLen + i] & 0xff) * k[kOff + y];
                }
                out[yy * rowLen + i] = clip8(ss);
            }
        }
        return out;
    }

    /** {@code ImagingResample{Horizontal,Vertical}_16bpc} for I;16 (little-endian samples). */
    static byte[] bicubic16(byte[] in, int w, int h, int outW, int outH) {
        Coefficients horiz = coefficients(w, outW);
        Coefficients vert = coefficients(h, outH);
        RowsRead rows = RowsRead.of(vert, h, outH, outW != w);
        int[] vertMin = rows.mins();
        byte[] temp = in;
        if (outW != w) {
            int first = rows.first();
            int tempH = rows.count();
            temp = new byte[tempH * outW * 2];
            for (int yy = 0; yy < tempH; yy++) {
                for (int xx = 0; xx < outW; xx++) {
                    double ss = 0.0;
                    for (int x = 0; x < horiz.size()[xx]; x++) {
                        ss += sample16(in, ((yy + first) * w + x + horiz.min()[xx]) * 2) * horiz.weights()[xx * horiz.ksize() + x];
                    }
                    store16(temp, (yy * outW + xx) * 2, ss);
                }
            }
        }
        if (outH == h) {
            return temp;
        }
        byte[] out = new byte[outH * outW * 2];
        for (int yy = 0; yy < outH; yy++) {
            for (int xx = 0; xx < outW; xx++) {
                double ss = 0.0;
                for (int y = 0; y < vert.size()[yy]; y++) {
                    ss += sample16(temp, ((y + vertMin[yy]) * outW + xx) * 2) * vert.weights()[yy * vert.ksize() + y];
                }
                store16(out, (yy * outW + xx) * 2, ss);
            }
        }
        return out;
    }

    private static int sample16(byte[] data, int at) {
        return (data[at] & 0xff) + ((data[at + 1] & 0xff) << 8);
    }

    /** ROUND_UP, then each byte clipped on its own, as the 16bpc passes store it. */
    private static void store16(byte[] data, int at, double ss) {
        int v = (int) (ss >= 0.0 ? ss + 0.5f : ss - 0.5f);
        data[at] = (byte) PilImage.clip8(v % 256);
        data[at + 1] = (byte) PilImage.clip8(v >> 8);
    }

    /** {@code ImagingScaleAffine}: the nearest neighbour, positions stepped in doubles as Pillow does. */
    static byte[] nearest(byte[] in, int w, int h, int bands, int outW, int outH) {
        double a0 = (double) (float) w / outW;
        double a4 = (double) (float) h / outH;
        int[] xin = new int[outW];
        double xo = a0 * 0.5;
        for (int x = 0; x < outW; x++) {
            xin[x] = xo < 0.0 ? -1 : (int) xo;
            xo += a0;
        }
        byte[] out = new byte[outW * outH * bands];
        double yo = a4 * 0.5;
        for (int y = 0; y < outH; y++) {
            int yi = yo < 0.0 ? -1 : (int) yo;
            if (yi >= 0 && yi < h) {
                for (int x = 0; x < outW; x++) {
                    if (xin[x] >= 0 && xin[x] < w) {
                        System.arraycopy(in, (yi * w + xin[x]) * bands, out, (y * outW + x) * bands, bands);
                    }
                }
            }
            yo += a4;
        }
        return out;
    }

    /** {@code rgbA2rgba} / {@code lA2la}: colour bands times alpha / 255 (alpha is the last band). */
    private static byte[] premultiply(byte[] in, int bands) {
        byte[] out = in.clone();
        for (int p = 0; p < in.length; p += bands) {
            int alpha = in[p + bands - 1] & 0xff;
            for (int b = 0; b < bands - 1; b++) {
                out[p + b] = (byte) PilImage.mulDiv255(in[p + b] & 0xff, alpha);
            }
        }
        return out;
    }

    /** {@code rgba2rgbA} / {@code la2lA}: back from premultiplied; alpha 0 and 255 keep the colour. */
    private static byte[] unpremultiply(byte[] in, int bands) {
        byte[] out = in.clone();
        for (int p = 0; p < in.length; p += bands) {
            int alpha = in[p + bands - 1] & 0xff;
            if (alpha != 0 && alpha != 255) {
                for (int b = 0; b < bands - 1; b++) {
                    out[p + b] = (byte) PilImage.clip8(255 * (in[p + b] & 0xff) / alpha);
                }
            }
        }
        return out;
    }
}
