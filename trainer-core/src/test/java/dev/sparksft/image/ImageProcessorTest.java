package dev.sparksft.image;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.sparksft.UserError;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The whole path against LLaMA-Factory's regularization + transformers' Qwen2VLImageProcessorPil
 * (make_image_processor_fixtures.py): the regularized and resized images' bytes, the grid, and
 * pixel_values bit for bit (their float32 sha256, sampled values, and one image in full). The
 * demo JPEGs too, since the JDK decodes them exactly as Pillow does (ImageDecoderTest).
 */
class ImageProcessorTest {
    @Test
    void pixelValuesAndGridsEqualTransformersBitForBit() throws Exception {
        ImageProcessorConfig config = ImageProcessorConfig.read(ImageFixtures.DIR);
        int cases = 0;
        for (JsonNode c : ImageFixtures.root().get("pipeline")) {
            String file = c.get("file").asText();
            String what = file + " with image_max_pixels " + c.get("image_max_pixels");
            ImageProcessor processor = new ImageProcessor(config, c.get("image_max_pixels").asLong(),
                    c.get("image_min_pixels").asLong());
            PilImage decoded = ImageFixtures.decode(file);
            assertEquals(c.get("mode").asText(), decoded.mode().pilName, what);
            PilImage regularized = processor.regularize(decoded);
            assertEquals(size(c.get("regularized")), regularized.size(), what);
            assertEquals(c.get("regularized_sha256").asText(), ImageFixtures.sha256(regularized.data()), what + ": regularized bytes");
            PilImage resized = processor.processorInput(regularized);
            assertEquals(size(c.get("resized")), resized.size(), what);
            assertEquals(c.get("resized_sha256").asText(), ImageFixtures.sha256(resized.data()), what + ": resized bytes");

            PixelValues pv = processor.process(ImageFixtures.bytes(file), file);
            JsonNode g = c.get("grid_thw");
            assertEquals(new ImageSizing.Grid(g.get(0).asInt(), g.get(1).asInt(), g.get(2).asInt()), pv.grid(), what);
            assertEquals(c.get("shape").get(0).asInt(), pv.grid().patches(), what);
            assertEquals(c.get("shape").get(1).asInt(), pv.patchDim(), what);
            int stride = c.get("stride").asInt();
            JsonNode samples = c.get("samples");
            for (int i = 0; i < samples.size(); i++) {
                assertEquals((float) samples.get(i).asDouble(), pv.values()[i * stride], 0f, what + ": value " + i * stride);
            }
            assertEquals(c.get("sha256").asText(), ImageFixtures.sha256(ImageFixtures.littleEndian(pv.values())), what + ": pixel_values");
            cases++;
        }
        assertEquals(22, cases);
    }

    @Test
    void theTinyImagesPixelValuesEqualInFull() throws Exception {
        ImageProcessor processor = new ImageProcessor(ImageProcessorConfig.read(ImageFixtures.DIR),
                ImageProcessor.DEFAULT_IMAGE_MAX_PIXELS, ImageProcessor.DEFAULT_IMAGE_MIN_PIXELS);
        PixelValues pv = processor.process(ImageFixtures.bytes("tiny_10x6.png"), "tiny_10x6.png");
        float[] expected = new float[pv.values().length];
        ByteBuffer.wrap(ImageFixtures.bytes("tiny_pixel_values.bin")).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(expected);
        assertArrayEquals(expected, pv.values());
        assertEquals(new ImageSizing.Grid(1, 4, 6), pv.grid());
        assertEquals(3 * 2 * 14 * 14, pv.patchDim());
    }

    @Test
    void aLargeImageTakesWellUnderASecond() {
        // a 1500x1000 image: regularized to 940x627 (image_max_pixels 768*768), resized to 952x616
        PilImage big = PilResize.resize(ImageFixtures.decode("large_300x200.png"), 1500, 1000);
        ImageProcessor processor = new ImageProcessor(ImageProcessorConfig.defaults(), 768 * 768, 32 * 32);
        processor.process(big, "warm-up");
        long start = System.nanoTime();
        PixelValues pv = processor.process(big, "big");
        long ms = (System.nanoTime() - start) / 1_000_000;
        System.out.println("1500x1000 image to " + pv.grid() + " in " + ms + " ms");
        assertEquals(new ImageSizing.Grid(1, 44, 68), pv.grid());
        assertTrue(ms < 2000, ms + " ms");
    }

    @Test
    void aBatchConcatenatesImagesInOrder() {
        ImageProcessor processor = new ImageProcessor(ImageProcessorConfig.defaults(), 768 * 768, 32 * 32);
        PixelValues a = processor.process(ImageFixtures.bytes("tiny_10x6.png"), "a");
        PixelValues b = processor.process(ImageFixtures.bytes("rgb_40x30.bmp"), "b");
        float[] batch = PixelValues.concat(List.of(a, b));
        assertEquals((a.grid().patches() + b.grid().patches()) * a.patchDim(), batch.length);
        assertEquals(a.values()[0], batch[0]);
        assertEquals(b.values()[0], batch[a.values().length]);
    }

    @Test
    void aConfigReadsSizeOrMinMaxPixelsWithDefaultsForTheRest() throws Exception {
        ImageProcessorConfig qwen2 = ImageProcessorConfig.read(ImageFixtures.DIR);
        assertEquals(3136, qwen2.minPixels());
        assertEquals(12845056, qwen2.maxPixels());
        assertEquals(14, qwen2.patchSize());
        assertEquals(2, qwen2.temporalPatchSize());
        assertEquals(2, qwen2.mergeSize());
        assertTrue(qwen2.doResize() && qwen2.doRescale() && qwen2.doNormalize() && qwen2.doConvertRgb());
        assertEquals(1 / 255.0, qwen2.rescaleFactor(), 0);
        assertArrayEquals(new float[] {0.48145466f, 0.4578275f, 0.40821073f}, qwen2.imageMean());

        ImageProcessorConfig sized = parse("{\"image_processor_type\": \"Qwen2VLImageProcessorFast\","
                + " \"size\": {\"shortest_edge\": 1000, \"longest_edge\": 2000000}, \"do_normalize\": false}");
        assertEquals(1000, sized.minPixels());
        assertEquals(2000000, sized.maxPixels());
        assertEquals(false, sized.doNormalize());
        ImageProcessorConfig both = parse("{\"min_pixels\": 5000, \"size\": {\"shortest_edge\": 1000, \"longest_edge\": 2000000}}");
        assertEquals(5000, both.minPixels()); // min_pixels wins, as in Qwen2VLImageProcessor.__init__
        assertEquals(2000000, both.maxPixels());
        assertEquals(ImageProcessorConfig.defaults().maxPixels(), parse("{}").maxPixels());
    }

    @Test
    void anotherProcessorOrBadValuesAreRefusedNamingFileKeyAndValue() {
        UserError type = assertThrows(UserError.class, () -> parse("{\"image_processor_type\": \"CLIPImageProcessor\"}"));
        assertTrue(type.getMessage().startsWith("m/preprocessor_config.json: image_processor_type is \"CLIPImageProcessor\""),
                type.getMessage());
        UserError values = assertThrows(UserError.class,
                () -> parse("{\"patch_size\": 0, \"image_std\": [1, 0, 1], \"resample\": 2, \"image_mean\": [0.5]}"));
        for (String part : new String[] {"patch_size is 0", "image_std is [1,0,1]", "resample is 2", "image_mean is [0.5]"}) {
            assertTrue(values.getMessage().contains(part), values.getMessage());
        }
        assertThrows(UserError.class, () -> parse("{\"min_pixels\": 9000, \"max_pixels\": 100}"));
        assertThrows(UserError.class, () -> parse("[1, 2]"));
        UserError missing = assertThrows(UserError.class, () -> ImageProcessorConfig.read(Path.of("no/such/model")));
        assertTrue(missing.getMessage().contains("preprocessor_config.json does not exist"), missing.getMessage());
    }

    @Test
    void savingCopiesTheSourceBytesOrWritesTheSettings(@TempDir Path dir) throws Exception {
        ImageProcessorConfig read = ImageProcessorConfig.read(ImageFixtures.DIR);
        Path copy = Files.createDirectory(dir.resolve("checkpoint-1"));
        read.save(copy);
        assertArrayEquals(ImageFixtures.bytes(ImageProcessorConfig.FILE), Files.readAllBytes(copy.resolve(ImageProcessorConfig.FILE)));

        Path written = Files.createDirectory(dir.resolve("built"));
        ImageProcessorConfig.defaults().save(written);
        ImageProcessorConfig back = ImageProcessorConfig.read(written);
        assertEquals(ImageProcessorConfig.defaults().minPixels(), back.minPixels());
        assertEquals(ImageProcessorConfig.defaults().maxPixels(), back.maxPixels());
        assertArrayEquals(ImageProcessorConfig.defaults().imageStd(), back.imageStd());
        assertEquals(ImageProcessorConfig.defaults().rescaleFactor(), back.rescaleFactor(), 0);
    }

    @Test
    void unresizedImagesMustBeWholePatches() throws Exception {
        ImageProcessorConfig noResize = parse("{\"do_resize\": false}");
        ImageProcessor processor = new ImageProcessor(noResize, 768 * 768, 32 * 32);
        UserError e = assertThrows(UserError.class, () -> processor.process(ImageFixtures.bytes("rgb_40x30.bmp"), "x.bmp"));
        assertTrue(e.getMessage().startsWith("x.bmp: with do_resize false"), e.getMessage());
    }

    private static ImageProcessorConfig parse(String json) throws Exception {
        return ImageProcessorConfig.parse(json.getBytes(StandardCharsets.UTF_8), "m/preprocessor_config.json");
    }

    private static ImageSizing.Size size(JsonNode wh) {
        return new ImageSizing.Size(wh.get(0).asInt(), wh.get(1).asInt());
    }
}
