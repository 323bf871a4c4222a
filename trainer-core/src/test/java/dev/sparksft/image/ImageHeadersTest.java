package dev.sparksft.image;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparksft.UserError;
import java.io.ByteArrayInputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Sizes from headers (mllm_demo's JPEGs, a PNG made here) and the errors for files that are no image. */
class ImageHeadersTest {
    static Path demo(String name) throws Exception {
        return Path.of(ImageHeadersTest.class.getResource("/mllm/mllm_demo_data/" + name).toURI());
    }

    @Test
    void theDemoImagesHaveTheSizesPilReports() throws Exception {
        // PIL: Image.open(p).size for 1.jpg, 2.jpg, 3.jpg
        assertEquals(new ImageSizing.Size(300, 168), ImageHeaders.read(Files.newInputStream(demo("1.jpg")), "r", "1.jpg"));
        assertEquals(new ImageSizing.Size(300, 199), ImageHeaders.read(Files.newInputStream(demo("2.jpg")), "r", "2.jpg"));
        assertEquals(new ImageSizing.Size(300, 166), ImageHeaders.read(Files.newInputStream(demo("3.jpg")), "r", "3.jpg"));
    }

    @Test
    void aPngsSizeIsReadToo(@TempDir Path dir) throws Exception {
        Path png = dir.resolve("wide.png");
        javax.imageio.ImageIO.write(new java.awt.image.BufferedImage(57, 13, java.awt.image.BufferedImage.TYPE_INT_RGB),
                "png", png.toFile());
        assertEquals(new ImageSizing.Size(57, 13), ImageHeaders.read(Files.newInputStream(png), "r", png.toString()));
    }

    @Test
    void textAndTruncatedFilesAreNamedWithTheRowAndPath() throws Exception {
        UserError text = assertThrows(UserError.class, () -> ImageHeaders.read(
                new ByteArrayInputStream("not an image".getBytes()), "demo.json [2]", "/data/cat.jpg"));
        assertEquals("demo.json [2]: image /data/cat.jpg is not an image: its first bytes are not those of a PNG, JPEG, "
                + "GIF or BMP file; check that the images column names image files, or convert the file to PNG or JPEG",
                text.getMessage());
        UserError webp = assertThrows(UserError.class, () -> ImageHeaders.read(new ByteArrayInputStream(
                "RIFF\0\0\0\0WEBPVP8 ".getBytes()), "demo.json [2]", "/data/cat.webp"));
        assertTrue(webp.getMessage().startsWith("demo.json [2]: image /data/cat.webp is a WebP image, not an image "
                + "spark-sft reads"), webp.getMessage());
        byte[] jpeg = Files.readAllBytes(demo("1.jpg"));
        UserError cut = assertThrows(UserError.class, () -> ImageHeaders.read(
                new ByteArrayInputStream(Arrays.copyOf(jpeg, 40)), "demo.json [2]", "/data/cut.jpg"));
        assertTrue(cut.getMessage().startsWith("demo.json [2]: image /data/cut.jpg cannot be read as a JPG image: "),
                cut.getMessage());
    }
}
