package dev.sparksft.image;

import dev.sparksft.UserError;
import java.io.IOException;
import java.io.InputStream;
import java.util.Iterator;
import javax.imageio.ImageIO;
import javax.imageio.ImageReader;
import javax.imageio.stream.ImageInputStream;

/**
 * An image's width and height read from its header, without decoding the pixels (javax.imageio's
 * readers), so that the data side counts an image's tokens ({@link ImageSizing}) for the cost of a
 * few hundred bytes. The file's kind is checked first with the rule {@link ImageDecoder} decodes
 * by (PNG, JPEG, GIF, BMP; WebP, TIFF, videos and audio refused by name), so a row is refused
 * where it is read, not later where its pixels are. The size is the stored one, as PIL's
 * {@code Image.open(...).size} reports it (no EXIF rotation, which LLaMA-Factory does not apply either).
 */
public final class ImageHeaders {
    /** Bytes enough for every signature {@link ImageDecoder#format} looks at. */
    private static final int SIGNATURE = 32;

    private ImageHeaders() {}

    /**
     * The size of the image in {@code bytes} (closed here).
     *
     * @param row  the example it belongs to ("mllm_demo.json row 2"), for messages
     * @param path the image's resolved path, for messages
     */
    public static ImageSizing.Size read(InputStream bytes, String row, String path) {
        try (InputStream in = new java.io.BufferedInputStream(bytes)) {
            in.mark(SIGNATURE);
            byte[] head = in.readNBytes(SIGNATURE);
            in.reset();
            ImageDecoder.format(head, row + ": image " + path);   // the kinds the decoder reads, or a UserError
            try (ImageInputStream iis = ImageIO.createImageInputStream(in)) {
                Iterator<ImageReader> readers = ImageIO.getImageReaders(iis);
                if (!readers.hasNext()) {
                    throw new UserError(row + ": image " + path + " has the signature of " + formatOf(path)
                            + " but no reader takes it; convert it to JPEG or PNG");
                }
                ImageReader reader = readers.next();
                try {
                    reader.setInput(iis, true, true);
                    int width = reader.getWidth(0);
                    int height = reader.getHeight(0);
                    if (width <= 0 || height <= 0) {
                        throw new UserError(row + ": image " + path + " has a size of " + width + "x" + height
                                + " in its header; replace the file");
                    }
                    return new ImageSizing.Size(width, height);
                } finally {
                    reader.dispose();
                }
            }
        } catch (UserError e) {
            throw e;
        } catch (IOException | IllegalArgumentException | IndexOutOfBoundsException e) {   // a broken header
            throw new UserError(row + ": image " + path + " cannot be read as " + formatOf(path) + ": "
                    + e.getMessage() + "; replace the file (it may be truncated or not what its name says)");
        }
    }

    private static String formatOf(String path) {
        int dot = path.lastIndexOf('.');
        return dot < 0 ? "an image" : "a " + path.substring(dot + 1).toUpperCase(java.util.Locale.ROOT) + " image";
    }
}
