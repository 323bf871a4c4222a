package dev.sparksft.image;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;

/**
 * Pillow's {@code image.resize((w, h))} byte for byte (reference: Pillow 11.3 through
 * make_image_processor_fixtures.py): down- and up-scaling, one axis only, odd sizes and ratios,
 * a 1x1 target, and every mode's rule (RGB/L bicubic, RGBA/LA premultiplied, P and 1 nearest,
 * I;16 in doubles).
 */
class PilResizeTest {
    @Test
    void everyResizeEqualsPillowsBytes() {
        int cases = 0;
        for (JsonNode c : ImageFixtures.root().get("resizes")) {
            PilImage source = ImageFixtures.decode(c.get("source").asText());
            assertEquals(c.get("mode").asText(), source.mode().pilName, c.toString());
            PilImage resized = PilResize.resize(source, c.get("width").asInt(), c.get("height").asInt());
            byte[] expected = ImageFixtures.bytes("resize/" + c.get("file").asText());
            String what = c.get("source").asText() + " -> " + c.get("width") + "x" + c.get("height");
            assertEquals(expected.length, resized.data().length, what);
            for (int i = 0; i < expected.length; i++) {
                if (expected[i] != resized.data()[i]) {
                    throw new AssertionError(what + ": byte " + i + " is " + (resized.data()[i] & 0xff) + ", Pillow's "
                            + (expected[i] & 0xff) + " (" + ImageFixtures.Difference.of(expected, resized.data()) + ")");
                }
            }
            cases++;
        }
        assertEquals(25, cases);
    }

    @Test
    void fortySevenMoreRatiosEqualPillowsHashes() {
        PilImage source = ImageFixtures.decode("rgb_160x120.png");
        int cases = 0;
        for (JsonNode c : ImageFixtures.root().get("resize_hashes")) {
            PilImage resized = PilResize.resize(source, c.get("width").asInt(), c.get("height").asInt());
            assertEquals(c.get("sha256").asText(), ImageFixtures.sha256(resized.data()), "160x120 -> " + c.get("width") + "x" + c.get("height"));
            cases++;
        }
        assertEquals(47, cases);
    }

    @Test
    void theBicubicKernelIsKeysWithAMinusOneHalf() {
        assertEquals(1.0, PilResize.bicubic(0), 0);
        assertEquals(0.0, PilResize.bicubic(1), 0);
        assertEquals(0.0, PilResize.bicubic(2), 0);
        assertEquals(-0.0625, PilResize.bicubic(1.5), 1e-15);
        assertEquals(0.5625, PilResize.bicubic(-0.5), 1e-15);
    }

    @Test
    void downscalingWidensTheSupportByTheFactor() {
        // 3x down: support 2 * 3 = 6 pixels each side, ksize ceil(6) * 2 + 1 = 13
        PilResize.Coefficients c = PilResize.coefficients(300, 100);
        assertEquals(13, c.ksize());
        double sum = 0;
        for (int i = 0; i < c.size()[50]; i++) {
            sum += c.weights()[50 * c.ksize() + i];
        }
        assertEquals(1.0, sum, 1e-12);
        assertTrue(c.size()[50] == 12, "an interior output reads 12 inputs, got " + c.size()[50]);
    }
}
