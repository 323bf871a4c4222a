package dev.sparksft.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The image keys LLaMA-Factory's Qwen2-VL runs set: their records, defaults and checks; video and audio stay refused. */
class MultimodalKeysTest {
    static SftConfig load(Path dir, String more) throws Exception {
        return SftConfig.load(SftConfigTest.yaml(dir, "model_name_or_path: m\ntemplate: qwen2_vl\ndataset: d\n"
                + "dataset_dir: /data/sets\n" + more), List.of());
    }

    @Test
    void defaultsAreLlamaFactorys(@TempDir Path dir) throws Exception {
        SftConfig c = load(dir, "");
        assertEquals(768 * 768, c.model().imageMaxPixels());
        assertEquals(32 * 32, c.model().imageMinPixels());
        assertEquals("/data/sets", c.data().mediaDir(), "media_dir defaults to dataset_dir");
        assertTrue(c.finetuning().freezeVisionTower());
        assertTrue(c.finetuning().freezeMultiModalProjector());
        assertFalse(c.finetuning().freezeLanguageModel());
    }

    @Test
    void theKeysAreRead(@TempDir Path dir) throws Exception {
        SftConfig c = load(dir, "image_max_pixels: 262144\nimage_min_pixels: 4096\nmedia_dir: /images\n"
                + "freeze_vision_tower: false\nfreeze_multi_modal_projector: false\nfreeze_language_model: true\n");
        assertEquals(262144, c.model().imageMaxPixels());
        assertEquals(4096, c.model().imageMinPixels());
        assertEquals("/images", c.data().mediaDir());
        assertFalse(c.finetuning().freezeVisionTower());
        assertFalse(c.finetuning().freezeMultiModalProjector());
        assertTrue(c.finetuning().freezeLanguageModel());
    }

    @Test
    void contradictionsAreCollected(@TempDir Path dir) throws Exception {
        ConfigProblems e = assertThrows(ConfigProblems.class, () -> load(dir,
                "image_max_pixels: 1000\nimage_min_pixels: 4096\nfreeze_language_model: true\nvideo_fps: 4\n"));
        String m = e.getMessage();
        assertTrue(m.contains("image_max_pixels (1000) cannot be smaller than image_min_pixels (4096)"), m);
        assertTrue(m.contains("freeze_language_model: true with freeze_vision_tower and freeze_multi_modal_projector "
                + "true (their defaults) leaves no part of the model to train"), m);
        assertTrue(m.contains("video_fps: 4 is not supported: videos and audio are not supported yet"), m);
        assertThrows(ConfigProblems.class, () -> load(dir, "image_max_pixels: many\n"));
    }

    @Test
    void videoAndAudioKeysAtTheirDefaultsAreAccepted(@TempDir Path dir) throws Exception {
        load(dir, "video_max_pixels: 65536\nvideo_fps: 2.0\naudio_sampling_rate: 16000\nimage_do_pan_and_scan: false\n");
    }
}
