package dev.sparksft.image;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.sparksft.image.ImageSizing.Size;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Sizes against transformers' smart_resize and LLaMA-Factory's regularization rules (reference
 * written by src/test/python/make_image_sizing_fixtures.py): equal, integer for integer.
 */
class ImageSizingTest {
    @Test
    void regularizedAndSmartResizedSizesEqualTheReference() throws Exception {
        List<String> lines = Files.readAllLines(Path.of("src/test/resources/image/sizes.csv"));
        assertEquals(42, lines.size());
        for (String line : lines) {
            int[] v = java.util.Arrays.stream(line.split(",")).mapToInt(Integer::parseInt).toArray();
            Size regularized = ImageSizing.regularized(new Size(v[0], v[1]), v[2], v[3]);
            assertEquals(new Size(v[4], v[5]), regularized, line);
            assertEquals(new Size(v[6], v[7]), ImageSizing.smartResize(regularized, 28, 3136, 12845056), line);
            assertEquals(new Size(v[8], v[9]), ImageSizing.smartResize(regularized, 28, 200704, 1003520), line);
        }
    }

    @Test
    void theDemoImageBecomesTwelveByTwentyTwoPatchesAndSixtySixTokens() {
        // mllm_demo's 1.jpg is 300x168; HF's processor gives image_grid_thw [1, 12, 22]
        Size resized = ImageSizing.smartResize(ImageSizing.regularized(new Size(300, 168), 589824, 1024), 28,
                3136, 12845056);
        ImageSizing.Grid grid = ImageSizing.imageGrid(resized, 14);
        assertEquals(new ImageSizing.Grid(1, 12, 22), grid);
        assertEquals(264, grid.patches());
        assertEquals(66, grid.tokens(2));
    }

    @Test
    void aSizeThatIsNotWholePatchesIsABug() {
        assertThrows(IllegalStateException.class, () -> ImageSizing.imageGrid(new Size(300, 168), 14));
    }
}
