package dev.sparksft.image;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.sparksft.UserError;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/**
 * Decoding against Pillow's {@code Image.open} (mode, size and {@code tobytes()}): PNG, GIF and BMP
 * exactly; LLaMA-Factory's demo JPEGs measured against Pillow's libjpeg-turbo decode, stored
 * losslessly as decoded_N.png.
 */
class ImageDecoderTest {
    @Test
    void losslessFilesDecodeToPillowsModeAndBytes() {
        int files = 0;
        for (JsonNode d : ImageFixtures.root().get("decodes")) {
            String file = d.get("file").asText();
            if (file.endsWith(".jpg")) {
                continue;
            }
            PilImage image = ImageFixtures.decode(file);
            assertEquals(d.get("mode").asText(), image.mode().pilName, file);
            assertEquals(d.get("width").asInt(), image.width(), file);
            assertEquals(d.get("height").asInt(), image.height(), file);
            assertEquals(d.get("sha256").asText(), ImageFixtures.sha256(image.data()), file + " pixels");
            if (d.has("rgb_sha256")) {
                assertEquals(d.get("rgb_sha256").asText(), ImageFixtures.sha256(image.toRgb().data()), file + " as RGB");
            }
            files++;
        }
        assertEquals(21, files);
    }

    /**
     * The JDK's JPEG decoder (IJG libjpeg 6b: islow IDCT, fancy upsampling) against Pillow's
     * libjpeg-turbo on the three demo images. Measured: see the bound asserted; printed per file.
     */
    @Test
    void demoJpegsDecodeAsPillowDoes() {
        for (int i = 1; i <= 3; i++) {
            PilImage jdk = ImageFixtures.decode(i + ".jpg");
            PilImage pil = ImageFixtures.decode("decoded_" + i + ".png");
            assertEquals(PilImage.Mode.RGB, jdk.mode());
            assertEquals(pil.size(), jdk.size());
            ImageFixtures.Difference d = ImageFixtures.Difference.of(pil.data(), jdk.data());
            System.out.println("decode " + i + ".jpg vs Pillow: " + d);
            assertEquals(0, d.maxAbs(), i + ".jpg: " + d);
        }
    }

    @Test
    void greyProgressiveUnsubsampledExifAndCmykJpegsDecodeExactly() {
        int files = 0;
        for (JsonNode d : ImageFixtures.root().get("decodes")) {
            String file = d.get("file").asText();
            if (!file.endsWith("x30.jpg") && !file.endsWith("x31.jpg")) {
                continue;
            }
            PilImage image = ImageFixtures.decode(file);
            assertEquals(d.get("mode").asText(), image.mode().pilName, file);
            // EXIF Orientation 6 would turn 40x30 into 30x40: Image.open leaves it, and so do we
            assertEquals(new ImageSizing.Size(d.get("width").asInt(), d.get("height").asInt()), image.size(), file);
            assertEquals(d.get("sha256").asText(), ImageFixtures.sha256(image.data()), file + " pixels");
            files++;
        }
        assertEquals(5, files);
    }

    @Test
    void truncatedAndDamagedImagesNameTheirPath() {
        for (String file : new String[] {"1.jpg", "rgb_37x29.png", "palette_40x30.gif"}) {
            byte[] whole = ImageFixtures.bytes(file);
            byte[] cut = Arrays.copyOf(whole, whole.length / 2);
            UserError e = assertThrows(UserError.class, () -> ImageDecoder.decode(cut, "data/" + file), file);
            assertTrue(e.getMessage().startsWith("data/" + file + " could not be decoded"), e.getMessage());
            assertTrue(e.getMessage().contains("truncated or damaged"), e.getMessage());
        }
        byte[] header = Arrays.copyOf(ImageFixtures.bytes("rgb_37x29.png"), 8);
        assertThrows(UserError.class, () -> ImageDecoder.decode(header, "x.png"));
    }

    @Test
    void otherFilesAreRefusedByWhatTheyAre() {
        assertRefused("not an image", "hello, world".getBytes(StandardCharsets.UTF_8), "not an image");
        assertRefused("empty", new byte[0], "not an image");
        assertRefused("clip.mp4", bytes(0, 0, 0, 0x18, 'f', 't', 'y', 'p', 'i', 's', 'o', 'm'), "an MP4/MOV video");
        assertRefused("clip.webm", bytes(0x1a, 0x45, 0xdf, 0xa3, 0, 0), "a WebM/Matroska video");
        assertRefused("clip.avi", bytes('R', 'I', 'F', 'F', 0, 0, 0, 0, 'A', 'V', 'I', ' '), "an AVI video");
        assertRefused("voice.wav", bytes('R', 'I', 'F', 'F', 0, 0, 0, 0, 'W', 'A', 'V', 'E'), "a WAV audio file");
        assertRefused("song.mp3", bytes('I', 'D', '3', 4, 0), "an audio file");
        assertRefused("song.flac", bytes('f', 'L', 'a', 'C', 0), "an audio file");
        assertRefused("photo.webp", bytes('R', 'I', 'F', 'F', 0, 0, 0, 0, 'W', 'E', 'B', 'P'), "a WebP image");
        assertRefused("scan.tif", bytes('I', 'I', '*', 0, 8, 0), "a TIFF image");
        UserError video = assertThrows(UserError.class,
                () -> ImageDecoder.decode(bytes(0, 0, 0, 0x18, 'f', 't', 'y', 'p', 'i', 's', 'o', 'm'), "clip.mp4"));
        assertTrue(video.getMessage().contains("videos and audio are not supported"), video.getMessage());
    }

    private static void assertRefused(String path, byte[] bytes, String kind) {
        UserError e = assertThrows(UserError.class, () -> ImageDecoder.decode(bytes, path), path);
        assertTrue(e.getMessage().startsWith(path + " is " + kind), e.getMessage());
    }

    private static byte[] bytes(int... values) {
        byte[] out = new byte[values.length];
        for (int i = 0; i < values.length; i++) {
            out[i] = (byte) values[i];
        }
        return out;
    }
}
