package dev.sparksft.template;

import dev.sparksft.UserError;
import static dev.sparksft.data.TokenizedExample.IGNORE_INDEX;

import dev.sparksft.config.DataArguments;
import dev.sparksft.config.ModelArguments;
import dev.sparksft.data.Conversation;
import dev.sparksft.data.Message;
import dev.sparksft.image.ImageProcessorConfig;
import dev.sparksft.data.TokenizedExample;
import dev.sparksft.tokenizer.NewTokens;
import dev.sparksft.tokenizer.Tokenizer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;

/**
 * Turns a conversation into input ids and labels exactly as LLaMA-Factory's
 * SupervisedDatasetProcessor does: turns are encoded separately, each (prompt, response) pair is
 * truncated by {@link #inferSeqlen} against what is left of {@code cutoff_len}, prompt labels
 * are masked unless {@code train_on_prompt}, and with {@code mask_history} only the last turn is
 * trained and the turns are kept from the last one backwards.
 *
 * <p>With an image template ({@link ImageTokens}) each {@code <image>} of the messages is expanded
 * to its image's tokens before the turns are encoded, as LLaMA-Factory's plugin does, and the
 * example lists its images ({@link TokenizedExample#images}). Two rules differ from LLaMA-Factory
 * where it would train on something broken: an {@code <|image_pad|>} position is never a target
 * (-100 even with train_on_prompt or an image in a reply), and {@code cutoff_len} never cuts inside
 * an image: a cut that would fall between an image's {@code <|vision_start|>} and
 * {@code <|vision_end|>} moves back to just before the image, so the image is left out whole (with
 * a warning naming the row, the image's tokens and cutoff_len), as are images after the cut.
 * LLaMA-Factory keeps the partial span, whose token count then no longer matches the image's
 * features, which the model refuses when it trains.
 */
public final class SupervisedEncoder {
    private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(SupervisedEncoder.class);
    private final ChatTemplate template;
    private final Tokenizer tokenizer;
    private final NewTokens newTokens;
    private final Options options;
    /** The template's image expansion, null for a text template. */
    private final ImageTokens images;
    private final int imagePadId;
    private final int visionBosId;
    private final int visionEosId;

    /** The data arguments that shape an example (LLaMA-Factory names in the config). */
    /** @param enableThinking true, false, or null for LLaMA-Factory's None (see DataArguments.Thinking) */
    public record Options(int cutoffLen, boolean trainOnPrompt, boolean maskHistory, Boolean enableThinking,
                          boolean preserveThinking) {
        public Options {
            if (cutoffLen < 1) {
                throw new UserError("cutoff_len must be >= 1, got " + cutoffLen);
            }
            if (trainOnPrompt && maskHistory) {
                throw new UserError("mask_history is incompatible with train_on_prompt: set one to false");
            }
        }
    }

    /** @param tokenizer the tokenizer after {@link ChatTemplate#prepare}, no config key having added tokens */
    public SupervisedEncoder(ChatTemplate template, Tokenizer tokenizer, Options options) {
        this(template, tokenizer, new NewTokens(tokenizer.length(), tokenizer.vocabSize(), false,
                !tokenizer.addedTokens().isEmpty(), List.of()), options);
    }

    /** @param newTokens what the run added to the tokenizer (the model's embedding follows) */
    public SupervisedEncoder(ChatTemplate template, Tokenizer tokenizer, NewTokens newTokens, Options options) {
        this(template, tokenizer, newTokens, options, null);
    }

    /**
     * @param images the image template's expansion, bound to the model's image processor (null:
     *               a text template, or a run that reads no images)
     */
    public SupervisedEncoder(ChatTemplate template, Tokenizer tokenizer, NewTokens newTokens, Options options,
                             ImageTokens images) {
        if (options.trainOnPrompt() && template.efficientEos()) {
            throw new UserError("train_on_prompt: template '" + template.name() + "' ends a conversation with one "
                    + "eos (efficient_eos), which LLaMA-Factory does not train prompts with: set train_on_prompt: false");
        }
        this.template = template;
        this.tokenizer = tokenizer;
        this.newTokens = newTokens;
        this.options = options;
        this.images = images;
        this.imagePadId = images == null ? -1 : requireToken(tokenizer, template, images.plugin().imageToken());
        this.visionBosId = images == null ? -1 : requireToken(tokenizer, template, images.plugin().visionBos());
        this.visionEosId = images == null ? -1 : requireToken(tokenizer, template, images.plugin().visionEos());
    }

    private static int requireToken(Tokenizer tokenizer, ChatTemplate template, String token) {
        return tokenizer.tokenId(token).orElseThrow(() -> new UserError("template '" + template.name() + "' needs the "
                + "token " + token + " in the tokenizer (Qwen2's vocabulary has it as an added token), which this "
                + "tokenizer lacks: use the tokenizer of a Qwen2-VL or Qwen2.5-VL model"));
    }

    /**
     * The encoder a run's data and model arguments describe: their template (with default_system)
     * and the model's tokenizer with add_tokens and add_special_tokens added, then prepared by that
     * template (LLaMA-Factory's load_tokenizer, then get_template_and_fix_tokenizer). The Spark
     * executors call this too, so they tokenize with the same new tokens and ids.
     *
     * @param raw the model's tokenizer (the caller closes it)
     */
    public static SupervisedEncoder of(DataArguments data, ModelArguments model, Tokenizer raw) {
        return of(data, model, raw, java.nio.file.Path.of(model.modelNameOrPath()));
    }

    /**
     * {@link #of(DataArguments, ModelArguments, Tokenizer)} with the model's files in {@code modelDir}
     * (a local copy of model_name_or_path), where an image template reads preprocessor_config.json.
     */
    public static SupervisedEncoder of(DataArguments data, ModelArguments model, Tokenizer raw,
                                       java.nio.file.Path modelDir) {
        ChatTemplate base = Templates.get(data.template());
        ChatTemplate template = data.defaultSystem() == null ? base : base.withDefaultSystem(data.defaultSystem());
        if (data.toolFormat() != null) {
            template = template.withToolCalling(template.toolCalling().withFormat(ToolFormat.of(data.toolFormat())));
        }
        ImageTokens images = null;
        if (template.mmPlugin() != null) {
            if (data.packing()) {
                throw new UserError("packing: true with template: " + template.name() + ": packing examples with "
                        + "images is not supported yet; set packing: false (and neat_packing: false)");
            }
            try {
                images = new ImageTokens(template.mmPlugin(), ImageProcessorConfig.read(modelDir),
                        model.imageMaxPixels(), model.imageMinPixels());
            } catch (java.io.IOException e) {
                throw new java.io.UncheckedIOException("cannot read " + modelDir.resolve(ImageProcessorConfig.FILE), e);
            }
        }
        Tokenizer withKeys = NewTokens.addKeyTokens(model, raw);
        Tokenizer prepared = template.prepare(withKeys);
        return new SupervisedEncoder(template, prepared, NewTokens.of(model, withKeys, prepared), new Options(
                data.cutoffLen(), data.trainOnPrompt(), data.maskHistory(), data.enableThinking().value(),
                data.preserveThinking()), images);
    }

    /** The image template's expansion (null for text templates). */
    public ImageTokens imageTokens() {
        return images;
    }

    /** What the run added to the tokenizer, which the model's embedding is resized for. */
    public NewTokens newTokens() {
        return newTokens;
    }

    public ChatTemplate template() {
        return template;
    }

    /** The tokenizer as the template prepared it (its pad and eos ids are the ones training uses). */
    public Tokenizer tokenizer() {
        return tokenizer;
    }

    /**
     * Encodes a valid conversation (see {@link Conversation#invalidReason}); a tools column or
     * function message the template cannot write is the user's mistake, named with the example.
     */
    public TokenizedExample encode(Conversation c) {
        List<TokenizedExample.Image> grids = imageGrids(c);
        List<Message> messages = images == null ? c.messages() : images.expand(c, grids);
        boolean discardingHistoryCot = options.maskHistory() && !options.preserveThinking();
        List<ChatTemplate.Turn> turns;
        try {
            turns = new ArrayList<>(template.encodeMultiturn(tokenizer, messages, c.system(), c.tools(),
                    options.enableThinking(), discardingHistoryCot));
        } catch (UserError e) {
            throw new UserError(c.source() + ": " + e.getMessage());
        }
        // the images of each turn, in order: those of its prompt message, then of its reply
        List<List<TokenizedExample.Image>> turnImages = new ArrayList<>();
        int nextImage = 0;
        for (int t = 0; t < turns.size(); t++) {
            int n = imagesIn(c.messages().get(2 * t)) + imagesIn(c.messages().get(2 * t + 1));
            turnImages.add(grids.subList(nextImage, nextImage + n));
            nextImage += n;
        }
        if (options.maskHistory()) {
            Collections.reverse(turns); // the last turns have priority under the cutoff
            Collections.reverse(turnImages);
        }
        List<int[]> inputParts = new ArrayList<>();
        List<int[]> labelParts = new ArrayList<>();
        List<List<TokenizedExample.Image>> keptImages = new ArrayList<>();
        // efficient_eos: one eos closes the example; it counts against the cutoff from the start
        int total = template.efficientEos() ? 1 : 0;
        for (int turn = 0; turn < turns.size(); turn++) {
            if (total >= options.cutoffLen()) {
                break;
            }
            int[] fullSource = turns.get(turn).source();
            int[] fullTarget = turns.get(turn).target();
            int[] lens = inferSeqlen(fullSource.length, fullTarget.length, options.cutoffLen() - total);
            int sourceLen = outsideImages(fullSource, lens[0]);
            int targetLen = outsideImages(fullTarget, lens[1]);
            int[] source = Arrays.copyOf(fullSource, sourceLen);
            int[] target = Arrays.copyOf(fullTarget, targetLen);
            total += sourceLen + targetLen;
            int kept = numImageSpans(source) + numImageSpans(target);
            int[] sourceLabel = options.trainOnPrompt() ? source.clone() : masked(source.length);
            if (template.efficientEos() && turn != 0 && source.length > 0) {
                sourceLabel[0] = tokenizer.eosId(); // the reply before this prompt had no eos of its own
            }
            int[] targetLabel = options.maskHistory() && turn != 0 ? masked(target.length) : target.clone();
            maskImagePads(source, sourceLabel);
            maskImagePads(target, targetLabel);
            if (options.maskHistory()) { // turns were reversed: put this one in front
                inputParts.add(0, ChatTemplate.concat(source, target));
                labelParts.add(0, ChatTemplate.concat(sourceLabel, targetLabel));
                keptImages.add(0, turnImages.get(turn).subList(0, kept));
            } else {
                inputParts.add(ChatTemplate.concat(source, target));
                labelParts.add(ChatTemplate.concat(sourceLabel, targetLabel));
                keptImages.add(turnImages.get(turn).subList(0, kept));
            }
        }
        if (template.efficientEos()) {
            inputParts.add(new int[] {tokenizer.eosId()});
            labelParts.add(new int[] {tokenizer.eosId()});
        }
        List<TokenizedExample.Image> exampleImages = keptImages.stream().flatMap(List::stream).toList();
        if (exampleImages.size() < grids.size()) {
            LOG.warn("{}: cutoff_len {} leaves out {} of its {} image(s) ({} image tokens in all), whole, as no cut "
                    + "falls inside an image", c.source(), options.cutoffLen(), grids.size() - exampleImages.size(),
                    grids.size(), grids.stream().mapToInt(images::numTokens).sum());
        }
        return new TokenizedExample(c.index(), ChatTemplate.concat(inputParts.toArray(new int[0][])),
                ChatTemplate.concat(labelParts.toArray(new int[0][])), exampleImages);
    }

    /** The conversation's images with their grids; a text template refuses images. */
    private List<TokenizedExample.Image> imageGrids(Conversation c) {
        if (c.images().isEmpty()) {
            return List.of();
        }
        if (images == null) {
            throw new UserError(c.source() + ": the row has " + c.images().size() + " image(s), but template '"
                    + template.name() + "' is a text template; set template: qwen2_vl for a Qwen2-VL or Qwen2.5-VL "
                    + "model, or remove columns.images from the dataset's entry");
        }
        return c.images().stream().map(images::image).toList();
    }

    private int imagesIn(Message m) {
        return images == null ? 0 : ImageTokens.count(m.content(), Conversation.IMAGE_PLACEHOLDER);
    }

    /**
     * {@code keep} tokens of {@code ids}, moved back to the start of an image span it would cut
     * into: a span is {@code <|vision_start|>} ... {@code <|vision_end|>}, kept whole or not at all.
     */
    private int outsideImages(int[] ids, int keep) {
        if (images == null) {
            return keep;
        }
        int start = -1;
        for (int i = 0; i < ids.length && i < keep; i++) {
            if (ids[i] == visionBosId && i + 1 < ids.length && ids[i + 1] == imagePadId) {
                start = i;
            } else if (ids[i] == visionEosId && start >= 0) {
                start = -1;
            }
        }
        return start >= 0 ? start : keep;   // start >= 0: the cut falls inside the span that opens there
    }

    /** Whole image spans in {@code ids} (each one {@code <|vision_start|>} followed by image pads). */
    private int numImageSpans(int[] ids) {
        if (images == null) {
            return 0;
        }
        int n = 0;
        for (int i = 0; i + 1 < ids.length; i++) {
            if (ids[i] == visionBosId && ids[i + 1] == imagePadId) {
                n++;
            }
        }
        return n;
    }

    /** An image pad is the image's place, never a target. */
    private void maskImagePads(int[] ids, int[] labels) {
        if (images == null) {
            return;
        }
        for (int i = 0; i < ids.length; i++) {
            if (ids[i] == imagePadId) {
                labels[i] = IGNORE_INDEX;
            }
        }
    }

    /**
     * A prediction example as LLaMA-Factory's UnsupervisedDatasetProcessor builds it: the prompt
     * (every message but the response, with the assistant header) to generate from, and the
     * response ids as the label (with the closing eos of efficient_eos templates), both cut to
     * cutoff_len by {@link #inferSeqlen}.
     */
    public ChatTemplate.Turn encodeForGeneration(Conversation c) {
        return encodePrompt(c).turn();
    }

    /**
     * A prediction example and its images: the prompt's images in token order (an image template
     * expands each {@code <image>} of the prompt as for training; a cut never falls inside one).
     */
    public record Prompt(ChatTemplate.Turn turn, List<TokenizedExample.Image> images) {}

    /** {@link #encodeForGeneration} with the images its prompt keeps; an image in the response is refused. */
    public Prompt encodePrompt(Conversation c) {
        List<TokenizedExample.Image> grids = imageGrids(c);
        List<Message> messages = images == null ? c.messages() : images.expand(c, grids);
        if (!c.messages().isEmpty() && imagesIn(c.messages().get(c.messages().size() - 1)) > 0) {
            throw new UserError(c.source() + ": the response to predict holds <image>; a generated answer cannot "
                    + "show an image: move it into a prompt message");
        }
        ChatTemplate.Turn turn;
        try {
            turn = template.encodeOneturn(tokenizer, messages, c.system(), c.tools(), options.enableThinking(),
                    options.preserveThinking());
        } catch (UserError e) {
            throw new UserError(c.source() + ": " + e.getMessage());
        }
        int[] label = template.efficientEos() ? ChatTemplate.concat(turn.target(), new int[] {tokenizer.eosId()})
                : turn.target();
        int[] lens = inferSeqlen(turn.source().length, label.length, options.cutoffLen());
        int sourceLen = outsideImages(turn.source(), lens[0]);
        int[] source = Arrays.copyOf(turn.source(), sourceLen);
        return new Prompt(new ChatTemplate.Turn(source, Arrays.copyOf(label, lens[1])),
                grids.subList(0, numImageSpans(source)));
    }

    private static int[] masked(int n) {
        int[] a = new int[n];
        Arrays.fill(a, IGNORE_INDEX);
        return a;
    }

    /**
     * LLaMA-Factory's {@code infer_seqlen}: the (source, target) lengths kept of a pair under
     * {@code cutoffLen}. A short target is kept whole; else a short source is kept whole; else
     * both are cut in proportion to their lengths.
     */
    public static int[] inferSeqlen(int sourceLen, int targetLen, int cutoffLen) {
        int maxTargetLen;
        if (targetLen * 2 < cutoffLen) {
            maxTargetLen = cutoffLen;
        } else if (sourceLen * 2 < cutoffLen) {
            maxTargetLen = cutoffLen - sourceLen;
        } else {
            maxTargetLen = (int) (cutoffLen * ((double) targetLen / (sourceLen + targetLen)));
        }
        int newTargetLen = Math.min(maxTargetLen, targetLen);
        int maxSourceLen = Math.max(cutoffLen - newTargetLen, 0);
        int newSourceLen = Math.min(maxSourceLen, sourceLen);
        return new int[] {newSourceLen, newTargetLen};
    }
}
