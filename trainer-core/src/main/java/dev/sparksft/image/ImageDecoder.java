package dev.sparksft.image;

import dev.sparksft.UserError;
import java.awt.image.BufferedImage;
import java.awt.image.IndexColorModel;
import java.awt.image.Raster;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import javax.imageio.IIOException;
import javax.imageio.ImageIO;
import javax.imageio.ImageReader;
import javax.imageio.metadata.IIOMetadata;
import javax.imageio.stream.ImageInputStream;
import javax.imageio.stream.MemoryCacheImageInputStream;
import org.w3c.dom.Node;

/**
 * Image file bytes to the {@link PilImage} that Pillow's {@code Image.open} gives (the first frame,
 * in Pillow's mode for the file), with the JDK's ImageIO decoders.
 *
 * <ul>
 *   <li>PNG: exact. The mode follows the header as Pillow's PngImagePlugin does: grey 1-bit is
 *       "1", 2/4/8-bit "L" (2 and 4 bits scaled to 0..255), 16-bit "I;16"; RGB(A) and grey+alpha
 *       8-bit are "RGB", "RGBA", "LA"; 16-bit colour keeps the high byte (grey+alpha 16-bit is
 *       "RGBA", as in Pillow); palette images are "P" with their palette. A tRNS chunk does not
 *       add alpha (Pillow keeps it as info, which {@code convert("RGB")} ignores).</li>
 *   <li>JPEG: grey is "L", YCbCr "RGB", decoded by the JDK's libjpeg (islow IDCT, fancy
 *       upsampling), which Pillow's libjpeg-turbo matches on the tested files (see
 *       ImageDecoderTest for the measured differences). Adobe CMYK JPEGs are "CMYK" with
 *       Pillow's samples; {@code convert("RGB")} then applies Pillow's naive formula, no ICC
 *       profile.</li>
 *   <li>GIF and BMP: a palette of greys i -> (i, i, i) opens as "L", any other palette as "P",
 *       as Pillow's plugins do; true-colour BMP as "RGB"/"RGBA".</li>
 *   <li>EXIF orientation is not applied (neither Pillow's {@code Image.open} nor LLaMA-Factory
 *       applies it), nor is an ICC profile or PNG gamma.</li>
 * </ul>
 * WebP, TIFF and other formats are refused by name, videos and audio files too; unreadable or
 * truncated bytes are a {@link UserError} naming the path.
 */
public final class ImageDecoder {
    /** Pillow's {@code Image.MAX_IMAGE_PIXELS * 2}: above it Image.open raises DecompressionBombError. */
    public static final long MAX_PIXELS = 2L * (1024 * 1024 * 1024 / 4 / 3);

    private ImageDecoder() {}

    /** The image in {@code bytes}, read from {@code path} (which errors name). */
    public static PilImage decode(byte[] bytes, String path) {
        String format = format(bytes, path);
        Iterator<ImageReader> readers = ImageIO.getImageReadersByFormatName(format);
        if (!readers.hasNext()) {
            throw new IllegalStateException("the JDK has no ImageIO reader for " + format);
        }
        ImageReader reader = readers.next();
        List<String> warnings = new ArrayList<>();
        BufferedImage image;
        IIOMetadata metadata;
        // in memory: ImageIO.createImageInputStream would cache the stream in a temporary file
        try (ImageInputStream in = new MemoryCacheImageInputStream(new ByteArrayInputStream(bytes))) {
            reader.setInput(in, true, false);
            reader.addIIOReadWarningListener((source, warning) -> warnings.add(warning));
            long pixels = (long) reader.getWidth(0) * reader.getHeight(0);
            if (pixels > MAX_PIXELS) {
                throw new UserError(path + " has " + pixels + " pixels, more than the " + MAX_PIXELS
                        + " that Pillow opens (a decompression bomb to it): scale the image down");
            }
            metadata = format.equals("png") ? reader.getImageMetadata(0) : null;
            image = reader.read(0);
        } catch (IIOException e) {
            if (format.equals("jpeg") && String.valueOf(e.getMessage()).contains("Unsupported Image Type")) {
                throw new UserError(path + " is a JPEG in a colour space the JDK does not decode: convert it to an RGB JPEG or PNG");
            }
            throw truncated(path, e.getMessage());
        } catch (IOException | IllegalArgumentException | IndexOutOfBoundsException | NegativeArraySizeException e) {
            if (e instanceof UserError u) {
                throw u;
            }
            // what ImageIO's decoders throw on damaged data besides IIOException
            throw truncated(path, e.toString());
        } finally {
            reader.dispose();
        }
        for (String warning : warnings) {
            // libjpeg's "Corrupt JPEG data: premature end of data segment" and the JDK's
            // "Truncated File - Missing EOI marker": Pillow raises "image file is truncated" for both
            String w = warning.toLowerCase(java.util.Locale.ROOT);
            if (w.contains("premature end") || w.contains("truncated")) {
                throw truncated(path, warning);
            }
        }
        return format.equals("png") ? png(image.getRaster(), image, metadata, path) : other(image, format, path);
    }

    private static UserError truncated(String path, String reason) {
        return new UserError(path + " could not be decoded (" + reason + "): the file is truncated or damaged;"
                + " restore it, or drop the example");
    }

    /** The ImageIO format name of {@code bytes}, from their signature; other kinds refused by name. */
    static String format(byte[] b, String path) {
        if (startsWith(b, 0, 0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a)) {
            return "png";
        }
        if (startsWith(b, 0, 0xff, 0xd8, 0xff)) {
            return "jpeg";
        }
        if (startsWith(b, 0, 'G', 'I', 'F', '8')) {
            return "gif";
        }
        if (startsWith(b, 0, 'B', 'M') && b.length >= 26) {
            return "bmp";
        }
        String kind = otherKind(b);
        if (kind != null) {
            throw new UserError(path + " is " + kind + ", not an image spark-sft reads (PNG, JPEG, GIF or BMP): "
                    + (kind.contains("video") || kind.contains("audio")
                            ? "videos and audio are not supported; give only images in the images column"
                            : "convert it to PNG or JPEG"));
        }
        throw new UserError(path + " is not an image: its first bytes are not those of a PNG, JPEG, GIF or BMP file;"
                + " check that the images column names image files, or convert the file to PNG or JPEG");
    }

    private static String otherKind(byte[] b) {
        if (startsWith(b, 0, 'R', 'I', 'F', 'F') && b.length >= 12) {
            String sub = new String(b, 8, 4, StandardCharsets.ISO_8859_1);
            return switch (sub) {
                case "WEBP" -> "a WebP image";
                case "WAVE" -> "a WAV audio file";
                case "AVI " -> "an AVI video";
                default -> null;
            };
        }
        if (b.length >= 12 && startsWith(b, 4, 'f', 't', 'y', 'p')) {
            String brand = new String(b, 8, 4, StandardCharsets.ISO_8859_1);
            if (brand.startsWith("M4A") || brand.startsWith("M4B")) {
                return "an M4A audio file";
            }
            return brand.startsWith("avif") || brand.startsWith("heic") || brand.startsWith("mif1")
                    ? "an AVIF/HEIF image" : "an MP4/MOV video";
        }
        if (startsWith(b, 0, 0x1a, 0x45, 0xdf, 0xa3)) {
            return "a WebM/Matroska video";
        }
        if (startsWith(b, 0, 'F', 'L', 'V') || startsWith(b, 0, 0, 0, 1, 0xba) || startsWith(b, 0, 0, 0, 1, 0xb3)) {
            return "an FLV/MPEG video";
        }
        if (startsWith(b, 0, 'I', 'D', '3') || startsWith(b, 0, 'f', 'L', 'a', 'C') || startsWith(b, 0, 'O', 'g', 'g', 'S')
                || (b.length >= 2 && (b[0] & 0xff) == 0xff && ((b[1] & 0xff) & 0xe0) == 0xe0)) {
            return "an audio file (MP3, FLAC, Ogg or AAC)";
        }
        if (startsWith(b, 0, 'I', 'I', '*', 0) || startsWith(b, 0, 'M', 'M', 0, '*')) {
            return "a TIFF image";
        }
        return null;
    }

    private static boolean startsWith(byte[] b, int at, int... signature) {
        if (b.length < at + signature.length) {
            return false;
        }
        for (int i = 0; i < signature.length; i++) {
            if ((b[at + i] & 0xff) != signature[i]) {
                return false;
            }
        }
        return true;
    }

    /** A PNG in Pillow's mode for its IHDR colour type and bit depth. */
    private static PilImage png(Raster raster, BufferedImage image, IIOMetadata metadata, String path) {
        Node ihdr = child(metadata.getAsTree("javax_imageio_png_1.0"), "IHDR");
        String colorType = ihdr.getAttributes().getNamedItem("colorType").getNodeValue();
        int depth = Integer.parseInt(ihdr.getAttributes().getNamedItem("bitDepth").getNodeValue());
        int w = raster.getWidth();
        int h = raster.getHeight();
        int shift = depth == 16 ? 8 : 0;
        return switch (colorType) {
            case "Grayscale" -> switch (depth) {
                case 1 -> new PilImage(PilImage.Mode.ONE, w, h, bands(raster, new int[] {0}, 0, 255), null);
                case 2, 4, 8 -> new PilImage(PilImage.Mode.L, w, h, bands(raster, new int[] {0}, 0, 255 / ((1 << depth) - 1)), null);
                default -> new PilImage(PilImage.Mode.I16, w, h, samples16(raster), null);
            };
            case "RGB" -> PilImage.rgb(w, h, bands(raster, new int[] {0, 1, 2}, shift, 1));
            case "RGBAlpha" -> new PilImage(PilImage.Mode.RGBA, w, h, bands(raster, new int[] {0, 1, 2, 3}, shift, 1), null);
            case "GrayAlpha" -> depth == 16
                    ? new PilImage(PilImage.Mode.RGBA, w, h, bands(raster, new int[] {0, 0, 0, 1}, shift, 1), null)
                    : new PilImage(PilImage.Mode.LA, w, h, bands(raster, new int[] {0, 1}, 0, 1), null);
            case "Palette" -> new PilImage(PilImage.Mode.P, w, h, bands(raster, new int[] {0}, 0, 1),
                    palette((IndexColorModel) image.getColorModel()));
            default -> throw new UserError(path + " is a PNG of colour type " + colorType + ", which spark-sft does not read: convert it to RGB");
        };
    }

    /** A JPEG, GIF or BMP by its decoded layout. */
    private static PilImage other(BufferedImage image, String format, String path) {
        Raster raster = image.getRaster();
        int w = raster.getWidth();
        int h = raster.getHeight();
        if (image.getColorModel() instanceof IndexColorModel icm) {
            int[] palette = palette(icm);
            byte[] indices = bands(raster, new int[] {0}, 0, 1);
            if (isIdentityGrey(icm)) {
                return new PilImage(PilImage.Mode.L, w, h, indices, null);
            }
            return new PilImage(PilImage.Mode.P, w, h, indices, palette);
        }
        if (image.getColorModel().getColorSpace().getType() == java.awt.color.ColorSpace.TYPE_CMYK) {
            // the JDK's reader gives the CMYK samples of an Adobe CMYK/YCCK JPEG uninverted, as Pillow's "CMYK"
            return new PilImage(PilImage.Mode.CMYK, w, h, bands(raster, new int[] {0, 1, 2, 3}, 0, 1), null);
        }
        return switch (raster.getNumBands()) {
            case 1 -> new PilImage(PilImage.Mode.L, w, h, bands(raster, new int[] {0}, 0, 1), null);
            case 3 -> PilImage.rgb(w, h, bands(raster, new int[] {0, 1, 2}, 0, 1));
            case 4 -> image.getColorModel().hasAlpha()
                    ? new PilImage(PilImage.Mode.RGBA, w, h, bands(raster, new int[] {0, 1, 2, 3}, 0, 1), null)
                    : PilImage.rgb(w, h, bands(raster, new int[] {0, 1, 2}, 0, 1));
            default -> throw new UserError(path + " is a " + format + " with " + raster.getNumBands()
                    + " bands, which spark-sft does not read: convert it to an RGB PNG or JPEG");
        };
    }

    /** Bands {@code which} of each pixel, each sample {@code >> shift} then {@code * scale}, interleaved. */
    private static byte[] bands(Raster raster, int[] which, int shift, int scale) {
        int w = raster.getWidth();
        int h = raster.getHeight();
        byte[] out = new byte[w * h * which.length];
        int[] row = new int[w];
        for (int y = 0; y < h; y++) {
            for (int i = 0; i < which.length; i++) {
                raster.getSamples(raster.getMinX(), raster.getMinY() + y, w, 1, which[i], row);
                for (int x = 0; x < w; x++) {
                    out[(y * w + x) * which.length + i] = (byte) ((row[x] >> shift) * scale);
                }
            }
        }
        return out;
    }

    private static byte[] samples16(Raster raster) {
        int w = raster.getWidth();
        int h = raster.getHeight();
        byte[] out = new byte[w * h * 2];
        int[] row = new int[w];
        for (int y = 0; y < h; y++) {
            raster.getSamples(raster.getMinX(), raster.getMinY() + y, w, 1, 0, row);
            for (int x = 0; x < w; x++) {
                out[(y * w + x) * 2] = (byte) row[x];
                out[(y * w + x) * 2 + 1] = (byte) (row[x] >> 8);
            }
        }
        return out;
    }

    /** The 256-entry 0xRRGGBB palette of {@code icm} (entries past its size black, alpha ignored). */
    private static int[] palette(IndexColorModel icm) {
        int[] palette = new int[256];
        for (int i = 0; i < Math.min(icm.getMapSize(), 256); i++) {
            palette[i] = icm.getRGB(i) & 0xffffff;
        }
        return palette;
    }

    /** A palette of greys whose entry i is (i, i, i): GIF and BMP files that Pillow opens as "L". */
    private static boolean isIdentityGrey(IndexColorModel icm) {
        for (int i = 0; i < icm.getMapSize(); i++) {
            if ((icm.getRGB(i) & 0xffffff) != i * 0x010101) {
                return false;
            }
        }
        return true;
    }

    private static Node child(Node node, String name) {
        for (Node c = node.getFirstChild(); c != null; c = c.getNextSibling()) {
            if (c.getNodeName().equals(name)) {
                return c;
            }
        }
        throw new IllegalStateException("PNG metadata without " + name);
    }
}
