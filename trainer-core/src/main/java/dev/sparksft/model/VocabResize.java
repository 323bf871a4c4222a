package dev.sparksft.model;

import dev.sparksft.runtime.Torch;
import dev.sparksft.tokenizer.NewTokens;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.bytedeco.pytorch.Generator;
import org.bytedeco.pytorch.GeneratorOptional;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * LLaMA-Factory's {@code resize_embedding_layer} (resize_vocab): the token embedding and the LM head
 * grow to the tokenizer's length rounded up to a multiple of 64 ({@code pad_to_multiple_of=64}),
 * their new rows first drawn as transformers draws them ({@code mean_resizing=False}: normal(0,
 * initializer_range)), then the rows of the new tokens set to the mean of the other rows plus
 * normal(0, 1/sqrt(hidden)) noise ({@code _noisy_mean_initialization}), in the embedding and, when
 * it is not tied to it, in the head. Which rows: the ids of add_tokens and add_special_tokens when
 * there are any (the mean then covers every other row, the padding rows included), else every new
 * row (the mean covers the old ones). With no growth (the tokens fit the embedding's rows) only the
 * key tokens' rows are set. The noise comes from the run seed, so every rank draws the same.
 *
 * <p>A template's stop word the tokenizer lacked makes LLaMA-Factory warn "make sure resize_vocab
 * is True" and then index past the embedding at the first forward pass; spark-sft turns resize_vocab
 * on instead whenever the tokenizer outgrows the embedding.
 */
public final class VocabResize {
    private static final Logger LOG = LoggerFactory.getLogger(VocabResize.class);
    /** pad_to_multiple_of of LLaMA-Factory's resize_token_embeddings call. */
    public static final int PAD_TO_MULTIPLE_OF = 64;
    /** The generator stream of the new rows ("vocab"), apart from the other streams of the run seed. */
    static final long STREAM = 0x766F636162L;

    private VocabResize() {}

    /** The resized model: its config (vocab_size changed when the rows grew) and weights. */
    public record Resized(ModelConfig config, ModelWeights weights) {}

    /** Whether resize_vocab holds for this model: set (or turned on by added tokens), or the tokenizer outgrows it. */
    public static boolean applies(ModelConfig cfg, NewTokens tokens) {
        return tokens.resizeVocab() || (tokens.templateAdded() && tokens.length() > cfg.vocabSize());
    }

    /** {@code rows} rounded up to a multiple of {@value #PAD_TO_MULTIPLE_OF}. */
    public static int padded(int rows) {
        return (rows + PAD_TO_MULTIPLE_OF - 1) / PAD_TO_MULTIPLE_OF * PAD_TO_MULTIPLE_OF;
    }

    /** The model as resize_vocab leaves it (the same objects when it does not apply). */
    public static Resized apply(ModelConfig cfg, ModelWeights weights, NewTokens tokens, long seed) {
        if (!applies(cfg, tokens)) {
            return new Resized(cfg, weights);
        }
        if (!tokens.resizeVocab()) {
            LOG.warn("the template added tokens the model's embedding has no row for (len(tokenizer) {} > vocab_size "
                    + "{}): resize_vocab turned on", tokens.length(), cfg.vocabSize());
        }
        int rows = cfg.vocabSize();
        boolean grows = tokens.length() > rows;
        int newRows = grows ? padded(tokens.length()) : rows;
        List<Integer> ids = tokens.initIds().stream().filter(id -> id >= 0 && id < newRows).toList();
        if (!grows && ids.isEmpty()) {
            return new Resized(cfg, weights);
        }
        Generator gen = Torch.generator(seed, STREAM);
        List<String> names = cfg.tieWordEmbeddings() ? List.of(ModelLayout.EMBEDDING)
                : List.of(ModelLayout.EMBEDDING, ModelLayout.LM_HEAD);
        Map<String, Tensor> resized = new LinkedHashMap<>();
        for (String name : names) {   // transformers grows the embedding, then the head
            Tensor w = weights.get(name).to(torch.ScalarType.Float);   // (rows, hidden)
            resized.put(name, grows ? grow(w, newRows, cfg.initializerRange(), gen) : w.clone());
        }
        for (String name : names) {   // LLaMA-Factory initialises the embedding, then the head
            noisyMean(resized.get(name), newRows - rows, ids, gen);
        }
        Map<String, Tensor> all = new LinkedHashMap<>(weights.tensors());
        resized.forEach((name, t) -> all.put(name, t.to(weights.get(name).scalar_type())));
        Map<String, Dtype> stored = new LinkedHashMap<>();
        all.keySet().forEach(n -> stored.put(n, weights.storedDtype(n)));
        weights.quantizedWeights().keySet().forEach(n -> stored.put(n, weights.storedDtype(n)));
        // QLoRA's 4-bit linears and a checkpoint's names (gemma3's model.language_model.) stay as they are
        ModelWeights out = weights.withTensors(all, stored);
        if (grows) {
            LOG.info("Resized token embeddings from {} to {} ({} tokens, {} rows initialised with the noisy mean).", rows,
                    newRows, tokens.length(), ids.isEmpty() ? newRows - rows : ids.size());
        } else {
            LOG.info("No resize needed (vocab fits in the embedding's {} rows); initialising {} new token(s) in place.",
                    rows, ids.size());
        }
        return new Resized(grows ? cfg.withVocabSize(newRows) : cfg, out);
    }

    /** (rows, hidden) to (newRows, hidden): the old rows, then normal(0, std) rows. */
    private static Tensor grow(Tensor w, int newRows, double std, Generator gen) {
        Tensor fresh = torch.randn(new long[] {newRows - w.size(0), w.size(1)}, new GeneratorOptional(gen),
                new TensorOptions(torch.ScalarType.Float)).mul_(new Scalar(std));
        return torch.cat(new TensorVector(w, fresh), 0);
    }

    /**
     * Sets rows {@code ids} of {@code w} (rows, hidden), or its last {@code numNew} rows when there are
     * none, to the mean of the other rows plus normal(0, 1/sqrt(hidden)) noise.
     */
    private static void noisyMean(Tensor w, int numNew, List<Integer> ids, Generator gen) {
        int rows = (int) w.size(0);
        long hidden = w.size(1);
        boolean[] isNew = new boolean[rows];
        if (ids.isEmpty()) {
            for (int r = rows - numNew; r < rows; r++) {
                isNew[r] = true;
            }
        } else {
            ids.forEach(id -> isNew[id] = true);
        }
        long[] keep = new long[rows];
        long[] set = new long[rows];
        int numKeep = 0;
        int numSet = 0;
        for (int r = 0; r < rows; r++) {
            if (isNew[r]) {
                set[numSet++] = r;
            } else {
                keep[numKeep++] = r;
            }
        }
        Tensor keepIdx = Tensor.create(java.util.Arrays.copyOf(keep, numKeep), numKeep);
        Tensor setIdx = Tensor.create(java.util.Arrays.copyOf(set, numSet), numSet);
        Tensor mean = w.index_select(0, keepIdx).mean(new long[] {0}, true, new ScalarTypeOptional());   // (1, hidden)
        Tensor noise = torch.randn(new long[] {numSet, hidden}, new GeneratorOptional(gen),
                new TensorOptions(torch.ScalarType.Float)).mul_(new Scalar(1.0 / Math.sqrt(hidden)));   // (k, hidden)
        w.index_copy_(0, setIdx, noise.add(mean));
    }
}
