package dev.sparksft.template;

import static dev.sparksft.template.TestTokenizers.IM_END;
import static dev.sparksft.template.TestTokenizers.IM_START;
import static dev.sparksft.template.TestTokenizers.ids;
import static dev.sparksft.template.TestTokenizers.masked;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparksft.UserError;
import dev.sparksft.data.Conversation;
import dev.sparksft.data.ImageFile;
import dev.sparksft.data.Message;
import dev.sparksft.data.Role;
import dev.sparksft.data.TokenizedExample;
import dev.sparksft.image.ImageProcessorConfig;
import dev.sparksft.tokenizer.NewTokens;
import dev.sparksft.tokenizer.Tokenizer;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The qwen2_vl template's image expansion, truncation and masks with a byte-level tokenizer made
 * in the test (each byte its own id) and Qwen2-VL's three vision tokens added as special tokens,
 * so every expected sequence is written out by hand from the template's strings.
 */
class ImageTokensTest {
    /** Qwen2-VL's hub preprocessor_config.json numbers: patch 14, temporal 2, merge 2, pixels 3136-12845056. */
    private static dev.sparksft.image.ImageProcessorConfig qwen2Processor() {
        dev.sparksft.image.ImageProcessorConfig d = dev.sparksft.image.ImageProcessorConfig.defaults();
        return new dev.sparksft.image.ImageProcessorConfig(3136, 12845056, 14, 2, 2, d.imageMean(), d.imageStd(), true,
                true, 1 / 255.0, true, true, null);
    }

    static final String SYSTEM = "system\nYou are a helpful assistant.";
    static Tokenizer raw;
    static Tokenizer tok;
    static int vs;
    static int ve;
    static int pad;

    @BeforeAll
    static void tokenizer(@TempDir Path dir) throws Exception {
        raw = TestTokenizers.bytes(dir);
        tok = raw.withAddedTokens(List.of("<|vision_start|>", "<|vision_end|>", "<|image_pad|>"), true);
        vs = tok.tokenId("<|vision_start|>").orElseThrow();
        ve = tok.tokenId("<|vision_end|>").orElseThrow();
        pad = tok.tokenId("<|image_pad|>").orElseThrow();
    }

    @AfterAll
    static void close() {
        raw.close();
        tok.close();
    }

    static SupervisedEncoder encoder(int cutoff, boolean trainOnPrompt, boolean maskHistory) {
        ChatTemplate t = Templates.get("qwen2_vl");
        Tokenizer prepared = t.prepare(tok);
        ImageTokens images = new ImageTokens(t.mmPlugin(), qwen2Processor(),
                768 * 768, 32 * 32);
        return new SupervisedEncoder(t, prepared, new NewTokens(prepared.length(), prepared.vocabSize(), false, true,
                List.of()), new SupervisedEncoder.Options(cutoff, trainOnPrompt, maskHistory, true, false), images);
    }

    /** 56x56 pixels: grid (1, 4, 4), 16 patches, 4 tokens; 280x280: grid (1, 20, 20), 100 tokens. */
    static final ImageFile SMALL = new ImageFile("/imgs/small.png", 56, 56);
    static final ImageFile BIG = new ImageFile("/imgs/big.png", 280, 280);

    static Conversation row(List<ImageFile> images, String... messages) {
        List<Message> m = new java.util.ArrayList<>();
        for (int i = 0; i < messages.length; i++) {
            m.add(new Message(i % 2 == 0 ? Role.USER : Role.ASSISTANT, messages[i]));
        }
        return new Conversation(0, "demo.json [4]", m.subList(0, m.size() - 1), m.subList(m.size() - 1, m.size()), "",
                "", images);
    }

    static int[] pads(int n) {
        int[] a = new int[n];
        Arrays.fill(a, pad);
        return a;
    }

    @Test
    void anImageIsItsVisionSpanInThePromptNeverATarget() {
        TokenizedExample ex = encoder(2048, false, false).encode(row(List.of(SMALL), "<image>Hi", "Yo"));
        int[] source = ChatTemplate.concat(ids(IM_START, SYSTEM, IM_END, "\n", IM_START, "user\n", vs),
                pads(4), ids(ve, "Hi", IM_END, "\n", IM_START, "assistant\n"));
        int[] target = ids("Yo", IM_END, "\n");
        assertArrayEquals(ChatTemplate.concat(source, target), ex.inputIds());
        assertArrayEquals(ChatTemplate.concat(masked(source.length), target), ex.labels());
        assertEquals(List.of(new TokenizedExample.Image("/imgs/small.png", 1, 4, 4)), ex.images());

        TokenizedExample trained = encoder(2048, true, false).encode(row(List.of(SMALL), "<image>Hi", "Yo"));
        int[] labels = ChatTemplate.concat(source, target);
        for (int i = 0; i < labels.length; i++) {
            labels[i] = labels[i] == pad ? -100 : labels[i];
        }
        assertArrayEquals(labels, trained.labels(), "train_on_prompt trains the prompt but not the image pads");
    }

    @Test
    void imagesFollowTheirPlaceholdersAcrossTurnsAndReplies() {
        TokenizedExample ex = encoder(2048, false, false).encode(row(List.of(BIG, SMALL, SMALL),
                "<image><image>Two", "Ok", "And<image>", "See"));
        assertEquals(List.of("/imgs/big.png", "/imgs/small.png", "/imgs/small.png"),
                ex.images().stream().map(TokenizedExample.Image::path).toList());
        assertEquals(108, Arrays.stream(ex.inputIds()).filter(id -> id == pad).count());
        assertTrue(Arrays.stream(ex.labels()).noneMatch(l -> l == pad));
    }

    @Test
    void moreOrFewerImagesThanPlaceholdersNameTheRow() {
        UserError more = assertThrows(UserError.class,
                () -> encoder(2048, false, false).encode(row(List.of(SMALL, SMALL), "<image>Hi", "Yo")));
        assertEquals("demo.json [4]: The number of images does not match the number of <image> tokens: the images "
                + "column has 2 image(s), the messages 1 <image> placeholder(s); write one <image> where each image "
                + "goes, in the images column's order", more.getMessage());
        UserError fewer = assertThrows(UserError.class,
                () -> encoder(2048, false, false).encode(row(List.of(), "<image>Hi<image>", "Yo")));
        assertTrue(fewer.getMessage().startsWith("demo.json [4]: The number of images does not match the number of "
                + "<image> tokens: the images column has 0 image(s), the messages 2"), fewer.getMessage());
    }

    @Test
    void videoAndAudioPlaceholdersAreNotSupportedYet() {
        UserError video = assertThrows(UserError.class,
                () -> encoder(2048, false, false).encode(row(List.of(), "<video>What happens?", "Yo")));
        assertEquals("demo.json [4]: message 0 holds <video>: videos are not supported yet; remove the placeholder "
                + "(images are supported, as <image>)", video.getMessage());
        UserError audio = assertThrows(UserError.class,
                () -> encoder(2048, false, false).encode(row(List.of(), "Hi", "<audio>")));
        assertTrue(audio.getMessage().startsWith("demo.json [4]: message 1 holds <audio>: audio are not supported yet"),
                audio.getMessage());
        UserError literal = assertThrows(UserError.class,
                () -> encoder(2048, false, false).encode(row(List.of(), "<|image_pad|>Hi", "Yo")));
        assertTrue(literal.getMessage().contains("holds the token <|image_pad|> as text"), literal.getMessage());
    }

    /**
     * LLaMA-Factory's infer_seqlen keeps the target (8 tokens) and cuts the source to cutoff - 8,
     * which here falls 10 tokens into the image: the cut moves back to just before the image's
     * vision_start, and the example lists no image.
     */
    @Test
    void aCutInsideAnImageMovesBeforeIt() {
        Conversation c = row(List.of(BIG), "Look: <image>What is it?", "A cat.");
        TokenizedExample full = encoder(2048, false, false).encode(c);
        int start = indexOf(full.inputIds(), vs);
        int[] target = ids("A cat.", IM_END, "\n");
        TokenizedExample cut = encoder(start + 10 + target.length, false, false).encode(c);
        assertArrayEquals(ChatTemplate.concat(Arrays.copyOf(full.inputIds(), start), target), cut.inputIds());
        assertArrayEquals(ChatTemplate.concat(masked(start), target), cut.labels());
        assertEquals(List.of(), cut.images());

        TokenizedExample whole = encoder(full.length(), false, false).encode(c);
        assertArrayEquals(full.inputIds(), whole.inputIds(), "a cutoff that keeps the span keeps the image");
        assertEquals(1, whole.images().size());
    }

    /** A later turn cut off keeps the earlier turns' images only; mask_history keeps the last turn's. */
    @Test
    void imagesOfTurnsBeyondTheCutoffAreLeftOut() {
        Conversation c = row(List.of(SMALL, BIG), "<image>One", "1", "<image>Two", "2");
        // turn 0 is 69 tokens; turn 1's cut at 80 - 69 - 3 = 8 falls into its image's span (opening at 6)
        TokenizedExample first = encoder(80, false, false).encode(c);
        assertEquals(List.of("/imgs/small.png"), first.images().stream().map(TokenizedExample.Image::path).toList());
        assertEquals(4, Arrays.stream(first.inputIds()).filter(id -> id == pad).count());
        TokenizedExample last = encoder(150, false, true).encode(c);
        assertEquals(List.of("/imgs/big.png"), last.images().stream().map(TokenizedExample.Image::path).toList());
        assertEquals(100, Arrays.stream(last.inputIds()).filter(id -> id == pad).count());
    }

    @Test
    void aTokenizerWithoutTheVisionTokensIsRefused() {
        ChatTemplate t = Templates.get("qwen2_vl");
        Tokenizer prepared = t.prepare(raw);
        UserError e = assertThrows(UserError.class, () -> new SupervisedEncoder(t, prepared,
                new NewTokens(prepared.length(), prepared.vocabSize(), false, true, List.of()),
                new SupervisedEncoder.Options(2048, false, false, true, false),
                new ImageTokens(t.mmPlugin(), qwen2Processor(), 589824, 1024)));
        assertTrue(e.getMessage().startsWith("template 'qwen2_vl' needs the token <|image_pad|> in the tokenizer"),
                e.getMessage());
    }

    static int indexOf(int[] a, int v) {
        for (int i = 0; i < a.length; i++) {
            if (a[i] == v) {
                return i;
            }
        }
        return -1;
    }
}
