package dev.sparksft.tokenizer;

import dev.sparksft.config.ModelArguments;
import java.util.ArrayList;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The tokens a run added to the model's tokenizer and what they ask of the model's embedding:
 * LLaMA-Factory's {@code resize_vocab} as it ends up after {@code patch_tokenizer}, and the
 * {@code new_tokens} it hands {@code resize_embedding_layer}.
 *
 * @param length        transformers' {@code len(tokenizer)} after the additions: the rows the
 *                      embedding must have before it is padded
 * @param vocabSize     the highest token id + 1 (the rows that cover every id)
 * @param resizeVocab   the resize_vocab key, or turned on because add_tokens or add_special_tokens
 *                      added a token (LLaMA-Factory: "changed `resize_vocab` to True")
 * @param templateAdded whether the template's {@code fix_special_tokens} added a token (a stop word
 *                      or eos the tokenizer lacked)
 * @param initIds       the ids of every add_tokens and add_special_tokens token, added now or
 *                      present before: the rows LLaMA-Factory initialises with the noisy mean
 */
public record NewTokens(int length, int vocabSize, boolean resizeVocab, boolean templateAdded, List<Integer> initIds) {
    private static final Logger LOG = LoggerFactory.getLogger(NewTokens.class);

    public NewTokens {
        initIds = List.copyOf(initIds);
    }

    /** A tokenizer nothing was added to, whose ids stop below {@code vocabSize}. */
    public static NewTokens none(int vocabSize) {
        return new NewTokens(vocabSize, vocabSize, false, false, List.of());
    }

    /**
     * LLaMA-Factory's {@code patch_tokenizer}: add_tokens added as plain tokens, then
     * add_special_tokens as special ones (each turns resize_vocab on when it adds a token).
     */
    public static Tokenizer addKeyTokens(ModelArguments model, Tokenizer raw) {
        Tokenizer tok = raw;
        if (model.addTokens() != null) {
            tok = tok.withAddedTokens(model.tokensToAdd(), false);
            LOG.info("Add tokens {} to tokenizer's vocabulary.", String.join(",", model.tokensToAdd()));
        }
        if (model.addSpecialTokens() != null) {
            tok = tok.withAddedTokens(model.specialTokensToAdd(), true);
            LOG.info("Add special tokens {} to tokenizer's vocabulary.", String.join(",", model.specialTokensToAdd()));
        }
        return tok;
    }

    /**
     * What the additions ask of the model.
     *
     * @param withKeys the tokenizer after {@link #addKeyTokens}
     * @param prepared the tokenizer after the template's fix_special_tokens as well
     */
    public static NewTokens of(ModelArguments model, Tokenizer withKeys, Tokenizer prepared) {
        boolean keysAdded = !withKeys.addedTokens().isEmpty();
        boolean resize = model.resizeVocab() || keysAdded;
        if (keysAdded && !model.resizeVocab()) {
            LOG.warn("New tokens have been added ({}), changed `resize_vocab` to True.",
                    String.join(",", withKeys.addedTokens()));
        }
        List<String> keyTokens = new ArrayList<>(model.tokensToAdd());
        keyTokens.addAll(model.specialTokensToAdd());
        List<Integer> ids = new ArrayList<>();
        for (String t : keyTokens) {
            prepared.tokenId(t).filter(id -> !ids.contains(id)).ifPresent(ids::add);   // an empty token has no id: skipped
        }
        ids.sort(null);
        boolean templateAdded = prepared.addedTokens().size() > withKeys.addedTokens().size();
        return new NewTokens(prepared.length(), prepared.vocabSize(), resize, templateAdded, ids);
    }
}
