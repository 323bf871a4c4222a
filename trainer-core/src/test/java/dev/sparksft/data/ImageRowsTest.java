package dev.sparksft.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparksft.UserError;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The images column as rows are read: paths resolved as LLaMA-Factory's _find_medias resolves
 * them (media_dir first, else as given), sizes from the headers, and each kind of bad image named
 * with its row and path; videos and audios columns refused by name.
 */
class ImageRowsTest {
    static Path demo() throws Exception {
        return Path.of(ImageRowsTest.class.getResource("/mllm/mllm_demo.json").toURI()).getParent();
    }

    static Path dataset(Path dir, String columns, String rows) throws Exception {
        Files.writeString(dir.resolve("dataset_info.json"), "{\"d\": {\"file_name\": \"d.json\", \"formatting\": "
                + "\"sharegpt\", \"columns\": " + columns + ", \"tags\": {\"role_tag\": \"role\", \"content_tag\": "
                + "\"content\", \"user_tag\": \"user\", \"assistant_tag\": \"assistant\"}}}");
        Files.writeString(dir.resolve("d.json"), rows);
        return dir;
    }

    static String row(String images) {
        return "[{\"messages\": [{\"role\": \"user\", \"content\": \"<image>Who?\"}, {\"role\": \"assistant\", "
                + "\"content\": \"Me.\"}], \"images\": " + images + "}]";
    }

    static final String IMAGES = "{\"messages\": \"messages\", \"images\": \"images\"}";

    @Test
    void theDemoSetsImagesAreResolvedUnderDatasetDirWithTheirSizes() throws Exception {
        List<Conversation> c = LocalDatasets.load(List.of("mllm_demo"), demo(), null);
        assertEquals(6, c.size());
        assertEquals(List.of(new ImageFile(demo().resolve("mllm_demo_data/1.jpg").toString(), 300, 168),
                new ImageFile(demo().resolve("mllm_demo_data/1.jpg").toString(), 300, 168)), c.get(0).images());
        assertEquals(List.of(new ImageFile(demo().resolve("mllm_demo_data/2.jpg").toString(), 300, 199)), c.get(1).images());
    }

    @Test
    void anAbsolutePathOrAPathOutsideMediaDirIsTakenAsGiven(@TempDir Path dir) throws Exception {
        Path jpg = demo().resolve("mllm_demo_data/3.jpg");
        dataset(dir, IMAGES, row("\"" + jpg + "\""));
        List<Conversation> c = LocalDatasets.load(List.of("d"), dir, null);
        assertEquals(List.of(new ImageFile(jpg.toString(), 300, 166)), c.get(0).images());
    }

    @Test
    void alpacaRowsTakeImagesToo(@TempDir Path dir) throws Exception {
        Path jpg = demo().resolve("mllm_demo_data/2.jpg");
        Files.writeString(dir.resolve("dataset_info.json"), "{\"a\": {\"file_name\": \"a.json\", \"columns\": "
                + "{\"prompt\": \"instruction\", \"query\": \"input\", \"response\": \"output\", \"images\": \"pics\"}}}");
        Files.writeString(dir.resolve("a.json"), "[{\"instruction\": \"<image>Who is he?\", \"input\": \"\", "
                + "\"output\": \"Muller.\", \"pics\": [\"" + jpg + "\"]}]");
        List<Conversation> c = LocalDatasets.load(List.of("a"), dir, null);
        assertEquals("<image>Who is he?", c.get(0).prompt().get(0).content());
        assertEquals(List.of(new ImageFile(jpg.toString(), 300, 199)), c.get(0).images());
    }

    @Test
    void aMissingImageNamesTheRowAndWhereItWasLookedFor(@TempDir Path dir) throws Exception {
        dataset(dir, IMAGES, row("[\"pics/none.jpg\"]"));
        UserError e = assertThrows(UserError.class, () -> LocalDatasets.load(List.of("d"), dir, null));
        assertEquals("d.json [0]: image 'pics/none.jpg' does not exist: neither " + dir.resolve("pics/none.jpg")
                + " (under media_dir " + dir + ") nor pics/none.jpg is a file; set media_dir to the folder the "
                + "images column's paths are relative to, or fix the path", e.getMessage());
    }

    @Test
    void aFileThatIsNoImageNamesTheRowAndPath(@TempDir Path dir) throws Exception {
        Files.createDirectories(dir.resolve("pics"));
        Files.writeString(dir.resolve("pics/notes.jpg"), "just text");
        dataset(dir, IMAGES, row("\"pics/notes.jpg\""));
        UserError e = assertThrows(UserError.class, () -> LocalDatasets.load(List.of("d"), dir, null));
        assertTrue(e.getMessage().startsWith("d.json [0]: image " + dir.resolve("pics/notes.jpg") + " is not an image: "
                + "its first bytes are not those of a PNG, JPEG, GIF or BMP file"), e.getMessage());
        Files.write(dir.resolve("pics/cut.jpg"), java.util.Arrays.copyOf(
                Files.readAllBytes(demo().resolve("mllm_demo_data/1.jpg")), 30));
        dataset(dir, IMAGES, row("\"pics/cut.jpg\""));
        UserError cut = assertThrows(UserError.class, () -> LocalDatasets.load(List.of("d"), dir, null));
        assertTrue(cut.getMessage().startsWith("d.json [0]: image " + dir.resolve("pics/cut.jpg") + " cannot be read"),
                cut.getMessage());
    }

    @Test
    void imagesThatAreNotPathsAreRefusedAndNoneIsNone(@TempDir Path dir) throws Exception {
        dataset(dir, IMAGES, row("[{\"bytes\": null}]"));
        UserError e = assertThrows(UserError.class, () -> LocalDatasets.load(List.of("d"), dir, null));
        assertTrue(e.getMessage().startsWith("d.json [0]: column 'images' (columns.images) holds {\"bytes\":null} at "
                + "position 0; expected image paths"), e.getMessage());
        dataset(dir, IMAGES, row("[]"));
        assertEquals(List.of(), LocalDatasets.load(List.of("d"), dir, null).get(0).images(), "[] is no image");
    }

    @Test
    void videosAndAudiosColumnsAreNotSupportedYet(@TempDir Path dir) throws Exception {
        dataset(dir, "{\"messages\": \"messages\", \"videos\": \"videos\"}", row("[]"));
        UserError e = assertThrows(UserError.class, () -> LocalDatasets.load(List.of("d"), dir, null));
        assertEquals(dir + "/dataset_info.json: dataset 'd' has columns.videos ('videos'): videos are not supported "
                + "yet (images are, with template: qwen2_vl); remove columns.videos from its entry", e.getMessage());
        dataset(dir, "{\"messages\": \"messages\", \"audios\": \"sound\"}", row("[]"));
        UserError a = assertThrows(UserError.class, () -> LocalDatasets.load(List.of("d"), dir, null));
        assertTrue(a.getMessage().contains("has columns.audios ('sound'): audios are not supported yet"), a.getMessage());
    }
}
