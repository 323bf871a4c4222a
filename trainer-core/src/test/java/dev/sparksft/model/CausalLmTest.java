package dev.sparksft.model;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparksft.data.Batch;
import dev.sparksft.data.Collator;
import dev.sparksft.runtime.Torch;
import java.nio.file.Path;
import java.util.List;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Padding must not change a row's logits: the mask hides padded keys, positions skip padding. */
class CausalLmTest {
    @BeforeAll
    static void loadTorch() {
        Torch.load(1);
    }

    static float[] logitsOf(CausalLm model, Batch b, int row, int from, int count) {
        Tensor logits = model.forward(b.inputIds(), b.attentionMask(), b.positionIds());
        return Tensors.floats(logits.select(0, row).narrow(0, from, count));
    }

    @ParameterizedTest
    @ValueSource(strings = {"mistral", "qwen2", "gemma2", "gemma3_text", "phi3"})
    void leftAndRightPaddedRowsMatchTheUnpaddedRow(String arch) throws Exception {
        Path dir = ParityTest.fixture(arch);
        int[] longRow = {5, 9, 13, 17, 21, 25, 29, 33, 37, 41, 45, 49};
        int[] shortRow = {7, 11, 15, 19, 23, 27, 31};
        try (PointerScope scope = new PointerScope()) {
            ModelConfig cfg = ModelConfig.load(dir);
            CausalLm model = new CausalLm(cfg, ModelWeights.load(dir, cfg));
            float[] alone = logitsOf(model, Collator.leftPadded(List.of(shortRow), 0), 0, 0, shortRow.length);
            float[] left = logitsOf(model, Collator.leftPadded(List.of(longRow, shortRow), 0), 1,
                    longRow.length - shortRow.length, shortRow.length);
            float[] right = logitsOf(model, Collator.rightPadded(List.of(
                    new dev.sparksft.data.TokenizedExample(0, longRow, longRow),
                    new dev.sparksft.data.TokenizedExample(1, shortRow, shortRow)), 0, 8), 1, 0, shortRow.length);
            double worstLeft = 0;
            double worstRight = 0;
            for (int i = 0; i < alone.length; i++) {
                worstLeft = Math.max(worstLeft, Math.abs(alone[i] - left[i]));
                worstRight = Math.max(worstRight, Math.abs(alone[i] - right[i]));
            }
            assertTrue(worstLeft < 1e-5, arch + " left padding changed logits by " + worstLeft);
            assertTrue(worstRight < 1e-5, arch + " right padding changed logits by " + worstRight);
        }
    }
}
