package dev.sparksft.cli;

import dev.sparksft.model.TinyModel;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparksft.loss.CausalLmLoss;
import dev.sparksft.model.CausalLm;
import dev.sparksft.model.ModelConfig;
import dev.sparksft.model.ModelWeights;
import dev.sparksft.runtime.Torch;
import dev.sparksft.template.Templates;
import dev.sparksft.tokenizer.Tokenizer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class MakeTinyModelTest {
    @BeforeAll
    static void loadTorch() {
        Torch.load(1);
    }

    static TinyModel.Options options(String arch, Path out, Path tokenizer) {
        return SftMain.parseTinyModel(tokenizer == null
                ? List.of("--arch", arch, "--out", out.toString(), "--hidden", "32", "--layers", "2", "--heads", "4",
                        "--kv-heads", "2", "--intermediate", "64", "--seed", "7", "--merges", "40")
                : List.of("--arch", arch, "--out", out.toString(), "--hidden", "32", "--layers", "2", "--heads", "4",
                        "--kv-heads", "2", "--intermediate", "64", "--tokenizer", tokenizer.toString()));
    }

    @ParameterizedTest
    @ValueSource(strings = {"llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3_text", "gemma3", "phi3", "qwen3_moe",
            "mixtral"})
    void writesACompleteLoadableModelDirectory(String arch, @TempDir Path dir) throws Exception {
        TinyModel.write(options(arch, dir, null));
        for (String f : List.of("config.json", "model.safetensors", "generation_config.json", "tokenizer.json",
                "tokenizer_config.json")) {
            assertTrue(Files.isRegularFile(dir.resolve(f)), f);
        }
        assertTrue(Files.readString(dir.resolve("tokenizer_config.json")).contains("chat_template"));
        try (Tokenizer tok = Tokenizer.load(dir); PointerScope scope = new PointerScope()) {
            ModelConfig cfg = ModelConfig.load(dir);
            assertEquals(arch, cfg.modelType());
            assertEquals(256 + 40 + 3, cfg.vocabSize(), "bytes + merges + ChatML specials");
            assertEquals(tok.vocabSize(), cfg.vocabSize());
            assertEquals(arch.startsWith("qwen") && !arch.endsWith("_moe") || arch.startsWith("gemma"), cfg.tieWordEmbeddings());
            Tokenizer chat = Templates.get("chatml").prepare(tok);
            int[] ids = chat.encode("<|im_start|>user\nhello<|im_end|>");
            assertEquals(chat.tokenId("<|im_start|>").orElseThrow(), ids[0]);

            CausalLm model = new CausalLm(cfg, ModelWeights.load(dir, cfg));
            long[] seq = new long[ids.length];
            long[] ones = new long[ids.length];
            long[] pos = new long[ids.length];
            for (int i = 0; i < ids.length; i++) {
                seq[i] = ids[i];
                ones[i] = 1;
                pos[i] = i;
            }
            Tensor input = Tensor.create(seq, 1, ids.length);
            Tensor logits = model.forward(input, Tensor.create(ones, 1, ids.length), Tensor.create(pos, 1, ids.length));
            assertArrayEquals(new long[] {1, ids.length, cfg.vocabSize()},
                    new long[] {logits.size(0), logits.size(1), logits.size(2)});
            double loss = CausalLmLoss.mean(logits, input);
            // A random init with std 0.02 predicts nearly uniformly: loss near ln(vocab) (the tied
            // qwen models see their own input embedding through the residual, hence the margin).
            assertEquals(Math.log(cfg.vocabSize()), loss, 0.3);
        }
    }

    @Test
    void sameSeedGivesTheSameBytes(@TempDir Path a, @TempDir Path b) throws Exception {
        TinyModel.write(options("llama", a, null));
        TinyModel.write(options("llama", b, null));
        assertArrayEquals(Files.readAllBytes(a.resolve("model.safetensors")), Files.readAllBytes(b.resolve("model.safetensors")));
    }

    @Test
    void copiedTokenizerSizesTheVocabulary(@TempDir Path source, @TempDir Path out) throws Exception {
        dev.sparksft.tokenizer.ByteLevelBpe.train("abc abc abd", 2, List.of("<|endoftext|>", "<|im_start|>", "<|im_end|>",
                "<extra_1>", "<extra_2>")).write(source, new Tokenizer.SpecialTokens(null, "<|endoftext|>", null), "");
        TinyModel.write(options("qwen2", out, source));
        assertArrayEquals(Files.readAllBytes(source.resolve("tokenizer.json")), Files.readAllBytes(out.resolve("tokenizer.json")));
        assertEquals(256 + 2 + 5, ModelConfig.load(out).vocabSize());
    }

    @Test
    void badOptionsAreNamed() {
        String m = assertThrows(IllegalArgumentException.class,
                () -> SftMain.parseTinyModel(List.of("--arch", "gpt2", "--out", "x"))).getMessage();
        assertTrue(m.contains("--arch must be one of llama, mistral, qwen2, qwen3, gemma2, gemma3_text, gemma3, phi3, qwen3_moe, mixtral, got 'gpt2'"), m);
        m = assertThrows(IllegalArgumentException.class,
                () -> SftMain.parseTinyModel(List.of("--arch", "llama", "--out", "x", "--heads", "3"))).getMessage();
        assertTrue(m.contains("--hidden (128) / --heads (3) must be an even integer head size"), m);
        m = assertThrows(IllegalArgumentException.class,
                () -> SftMain.parseTinyModel(List.of("--arch", "llama", "--out", "x", "--layer", "3"))).getMessage();
        assertTrue(m.contains("unknown option '--layer' (did you mean '--layers'?)"), m);
        m = assertThrows(IllegalArgumentException.class,
                () -> SftMain.parseTinyModel(List.of("--arch", "llama", "--hidden", "big"))).getMessage();
        assertTrue(m.contains("--hidden must be an integer, got 'big'"), m);
        assertFalse(m.isEmpty());
    }
}
