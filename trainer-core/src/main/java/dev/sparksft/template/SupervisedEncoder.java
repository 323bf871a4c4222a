package dev.sparksft.template;

import dev.sparksft.UserError;
import static dev.sparksft.data.TokenizedExample.IGNORE_INDEX;

import dev.sparksft.config.DataArguments;
import dev.sparksft.config.ModelArguments;
import dev.sparksft.data.Conversation;
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
 */
public final class SupervisedEncoder {
    private final ChatTemplate template;
    private final Tokenizer tokenizer;
    private final NewTokens newTokens;
    private final Options options;

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
        if (options.trainOnPrompt() && template.efficientEos()) {
            throw new UserError("train_on_prompt: template '" + template.name() + "' ends a conversation with one "
                    + "eos (efficient_eos), which LLaMA-Factory does not train prompts with: set train_on_prompt: false");
        }
        this.template = template;
        this.tokenizer = tokenizer;
        this.newTokens = newTokens;
        this.options = options;
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
        ChatTemplate base = Templates.get(data.template());
        ChatTemplate template = data.defaultSystem() == null ? base : base.withDefaultSystem(data.defaultSystem());
        if (data.toolFormat() != null) {
            template = template.withToolCalling(template.toolCalling().withFormat(ToolFormat.of(data.toolFormat())));
        }
        Tokenizer withKeys = NewTokens.addKeyTokens(model, raw);
        Tokenizer prepared = template.prepare(withKeys);
        return new SupervisedEncoder(template, prepared, NewTokens.of(model, withKeys, prepared), new Options(
                data.cutoffLen(), data.trainOnPrompt(), data.maskHistory(), data.enableThinking().value(),
                data.preserveThinking()));
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
        boolean discardingHistoryCot = options.maskHistory() && !options.preserveThinking();
        List<ChatTemplate.Turn> turns;
        try {
            turns = new ArrayList<>(template.encodeMultiturn(tokenizer, c.messages(), c.system(), c.tools(),
                    options.enableThinking(), discardingHistoryCot));
        } catch (UserError e) {
            throw new UserError(c.source() + ": " + e.getMessage());
        }
        if (options.maskHistory()) {
            Collections.reverse(turns); // the last turns have priority under the cutoff
        }
        List<int[]> inputParts = new ArrayList<>();
        List<int[]> labelParts = new ArrayList<>();
        // efficient_eos: one eos closes the example; it counts against the cutoff from the start
        int total = template.efficientEos() ? 1 : 0;
        for (int turn = 0; turn < turns.size(); turn++) {
            if (total >= options.cutoffLen()) {
                break;
            }
            int[] lens = inferSeqlen(turns.get(turn).source().length, turns.get(turn).target().length,
                    options.cutoffLen() - total);
            int[] source = Arrays.copyOf(turns.get(turn).source(), lens[0]);
            int[] target = Arrays.copyOf(turns.get(turn).target(), lens[1]);
            total += lens[0] + lens[1];
            int[] sourceLabel = options.trainOnPrompt() ? source : masked(source.length);
            if (template.efficientEos() && turn != 0 && source.length > 0) {
                sourceLabel[0] = tokenizer.eosId(); // the reply before this prompt had no eos of its own
            }
            int[] targetLabel = options.maskHistory() && turn != 0 ? masked(target.length) : target;
            if (options.maskHistory()) { // turns were reversed: put this one in front
                inputParts.add(0, ChatTemplate.concat(source, target));
                labelParts.add(0, ChatTemplate.concat(sourceLabel, targetLabel));
            } else {
                inputParts.add(ChatTemplate.concat(source, target));
                labelParts.add(ChatTemplate.concat(sourceLabel, targetLabel));
            }
        }
        if (template.efficientEos()) {
            inputParts.add(new int[] {tokenizer.eosId()});
            labelParts.add(new int[] {tokenizer.eosId()});
        }
        return new TokenizedExample(c.index(), ChatTemplate.concat(inputParts.toArray(new int[0][])),
                ChatTemplate.concat(labelParts.toArray(new int[0][])));
    }

    /**
     * A prediction example as LLaMA-Factory's UnsupervisedDatasetProcessor builds it: the prompt
     * (every message but the response, with the assistant header) to generate from, and the
     * response ids as the label (with the closing eos of efficient_eos templates), both cut to
     * cutoff_len by {@link #inferSeqlen}.
     */
    public ChatTemplate.Turn encodeForGeneration(Conversation c) {
        ChatTemplate.Turn turn;
        try {
            turn = template.encodeOneturn(tokenizer, c.messages(), c.system(), c.tools(), options.enableThinking(),
                    options.preserveThinking());
        } catch (UserError e) {
            throw new UserError(c.source() + ": " + e.getMessage());
        }
        int[] label = template.efficientEos() ? ChatTemplate.concat(turn.target(), new int[] {tokenizer.eosId()})
                : turn.target();
        int[] lens = inferSeqlen(turn.source().length, label.length, options.cutoffLen());
        return new ChatTemplate.Turn(Arrays.copyOf(turn.source(), lens[0]), Arrays.copyOf(label, lens[1]));
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
