package dev.sparksft.image;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/** The reference written by src/test/python/make_image_processor_fixtures.py (Pillow 11.3, transformers 5). */
final class ImageFixtures {
    static final Path DIR = Path.of("src/test/resources/image/processor");
    private static JsonNode root;

    private ImageFixtures() {}

    static synchronized JsonNode root() {
        if (root == null) {
            try {
                root = new ObjectMapper().readTree(DIR.resolve("fixtures.json").toFile());
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        return root;
    }

    static byte[] bytes(String file) {
        try {
            return Files.readAllBytes(DIR.resolve(file));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static PilImage decode(String file) {
        return ImageDecoder.decode(bytes(file), file);
    }

    static String sha256(byte[] data) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(data));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** float32 little-endian, as numpy's tobytes() of a '<f4' array. */
    static byte[] littleEndian(float[] values) {
        ByteBuffer b = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        b.asFloatBuffer().put(values);
        return b.array();
    }

    /** Per-sample differences of two byte images: max abs, mean abs, share differing. */
    record Difference(int maxAbs, double meanAbs, double shareDiffering) {
        static Difference of(byte[] a, byte[] b) {
            if (a.length != b.length) {
                throw new IllegalStateException(a.length + " vs " + b.length + " samples");
            }
            int max = 0;
            long sum = 0;
            long differing = 0;
            for (int i = 0; i < a.length; i++) {
                int d = Math.abs((a[i] & 0xff) - (b[i] & 0xff));
                max = Math.max(max, d);
                sum += d;
                differing += d != 0 ? 1 : 0;
            }
            return new Difference(max, (double) sum / a.length, (double) differing / a.length);
        }

        @Override
        public String toString() {
            return String.format("max abs %d, mean abs %.4f, %.2f%% of samples differ", maxAbs, meanAbs, 100 * shareDiffering);
        }
    }
}
