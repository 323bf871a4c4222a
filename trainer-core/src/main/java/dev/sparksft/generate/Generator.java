package dev.sparksft.generate;

import dev.sparksft.image.VisionInputs;
import dev.sparksft.model.MropePositions;
import dev.sparksft.UserError;
import dev.sparksft.data.Batch;
import dev.sparksft.data.Collator;
import dev.sparksft.model.KvCache;
import dev.sparksft.model.CausalLm;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Set;
import org.bytedeco.javacpp.LongPointer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * Batched generation as transformers' {@code generate} does it for decoder-only models: prompts
 * left-padded with HF position ids, one prefill over the prompts, then one token per step with
 * a {@link KvCache}; each row stops at any stop id or after max_new_tokens. Next tokens come from
 * {@link Sampling} (greedy, or seeded sampling with temperature, top-k, top-p and repetition
 * penalty). Prompts are generated in batches of similar length (sorted by length, so padding stays
 * small) and the results come back in input order.
 */
public final class Generator {
    private final CausalLm model;
    private final Sampling sampling;
    private final Set<Integer> stopIds;
    private final int padId;
    private final int batchSize;
    private final boolean useCache;

    /**
     * @param stopIds  the template's stop words and the tokenizer's eos: a row ends with the first of them
     * @param useCache false recomputes the whole sequence every step (the reference the cache is checked against)
     */
    public Generator(CausalLm model, Sampling sampling, Set<Integer> stopIds, int padId, int batchSize,
                     boolean useCache) {
        if (batchSize < 1) {
            throw new UserError("per_device_eval_batch_size must be >= 1, got " + batchSize);
        }
        this.model = model;
        this.sampling = sampling;
        this.stopIds = stopIds;
        this.padId = padId;
        this.batchSize = batchSize;
        this.useCache = useCache;
    }

    /** What came out for one prompt: the generated ids (the stop token included when one ended it). */
    public record Output(int[] ids, boolean stopped) {}

    /** Generates for every prompt, in batches of similar length; outputs in the order of {@code prompts}. */
    public List<Output> generate(List<int[]> prompts) {
        long[] keys = new long[prompts.size()];
        for (int i = 0; i < keys.length; i++) {
            keys[i] = i;
        }
        return generate(prompts, keys);
    }

    /**
     * {@link #generate(List)} with each prompt's sampling key (its index in the whole prediction
     * set): an example samples the same tokens whichever batch or task it lands in.
     */
    public List<Output> generate(List<int[]> prompts, long[] keys) {
        return generate(prompts, keys, rows -> null);
    }

    /**
     * {@link #generate(List, long[])} for a vision-language model: {@code imagesOf} gives the images of
     * the prompts at the given indices, in that order (null: none), which the prefill places at their
     * image tokens; M-RoPE positions for the prefill, and each decode step after it at its text
     * position plus its row's rope delta.
     */
    public List<Output> generate(List<int[]> prompts, long[] keys,
                                 java.util.function.Function<List<Integer>, VisionInputs> imagesOf) {
        Integer[] order = new Integer[prompts.size()];
        for (int i = 0; i < order.length; i++) {
            order[i] = i;
        }
        Arrays.sort(order, Comparator.comparingInt(i -> prompts.get(i).length));   // stable: ties keep input order
        Output[] out = new Output[prompts.size()];
        for (int from = 0; from < order.length; from += batchSize) {
            List<Integer> rows = Arrays.asList(order).subList(from, Math.min(order.length, from + batchSize));
            List<int[]> batch = new ArrayList<>();
            rows.forEach(i -> batch.add(prompts.get(i)));
            Sampling.Rng rng = sampling.newRng(rows.stream().mapToLong(i -> keys[i]).toArray());
            VisionInputs images = imagesOf.apply(rows);
            List<Output> generated = useCache ? withCache(batch, rng, images) : withoutCache(batch, rng, images);
            for (int j = 0; j < rows.size(); j++) {
                out[rows.get(j)] = generated.get(j);
            }
        }
        return Arrays.asList(out);
    }

    /** Share of pad positions in the batches {@link #generate} forms for {@code prompts} (sorted or not). */
    public static double paddingFraction(List<int[]> prompts, int batchSize, boolean sortByLength) {
        List<int[]> sorted = new ArrayList<>(prompts);
        if (sortByLength) {
            sorted.sort(Comparator.comparingInt(p -> p.length));
        }
        long pads = 0;
        long total = 0;
        for (int from = 0; from < sorted.size(); from += batchSize) {
            List<int[]> batch = sorted.subList(from, Math.min(sorted.size(), from + batchSize));
            int longest = batch.stream().mapToInt(p -> p.length).max().orElse(0);
            for (int[] p : batch) {
                pads += longest - p.length;
                total += longest;
            }
        }
        return total == 0 ? 0 : (double) pads / total;
    }

    private List<Output> withCache(List<int[]> prompts, Sampling.Rng rng, VisionInputs images) {
        int n = prompts.size();
        Progress progress = new Progress(prompts, sampling.maxNewTokens());
        try (NoGradGuard noGrad = new NoGradGuard(); PointerScope batchScope = new PointerScope()) {
            // what lives across steps is allocated once at full length; a step reads views of it
            Batch b = Collator.leftPadded(prompts, padId).withImages(images).to(model.device());
            long promptLength = b.seqLen();
            // a vision-language model: M-RoPE positions for the prefill, rope deltas for what follows
            MropePositions mrope = model.visionLanguage() == null ? null
                    : model.ropeIndex(b.inputIds(), b.attentionMask(), b.images());
            long capacity = promptLength + sampling.maxNewTokens();
            KvCache cache = new KvCache(model.config(), n, capacity, model.weights().get("model.embed_tokens.weight"));
            Tensor mask = b.attentionMask().new_ones(new long[] {n, capacity});        // (batch, capacity)
            mask.narrow(1, 0, promptLength).copy_(b.attentionMask());
            Tensor sequences = b.inputIds().new_zeros(new long[] {n, capacity});       // (batch, capacity)
            sequences.narrow(1, 0, promptLength).copy_(b.inputIds());
            long[] position = toArray(b.positionIds().select(1, promptLength - 1), n);
            long[] next;
            try (PointerScope step = new PointerScope()) {
                Tensor last = model.forward(b.inputIds(), b.attentionMask(),
                        mrope == null ? b.positionIds() : mrope.positionIds(), cache, b.images())
                        .select(1, promptLength - 1);                                    // (batch, vocab)
                next = toArray(sampling.next(last, b.inputIds(), rng), n);
            }
            // each step feeds the token just chosen (at position length) and chooses the next; max_new_tokens in all
            for (long length = promptLength; !progress.add(next, stopIds) && length < capacity - 1; length++) {
                try (PointerScope step = new PointerScope()) {
                    Tensor ids = Tensor.create(next, n, 1).to(model.device(), ScalarType.Long);   // (batch, 1)
                    sequences.narrow(1, length, 1).copy_(ids);
                    for (int r = 0; r < n; r++) {
                        position[r]++;
                    }
                    Tensor positions = Tensor.create(position, n, 1).to(model.device(), ScalarType.Long);
                    if (mrope != null) {
                        positions = mrope.decodePositions(positions);                  // (3, batch, 1)
                    }
                    Tensor last = model.forward(ids, mask.narrow(1, 0, length + 1), positions, cache).select(1, 0);
                    next = toArray(sampling.next(last, sequences.narrow(1, 0, length + 1), rng), n);
                }
            }
        }
        return progress.outputs();
    }

    /** The same decoding without a cache: every step runs the whole (left-padded) sequence again. */
    private List<Output> withoutCache(List<int[]> prompts, Sampling.Rng rng, VisionInputs images) {
        int n = prompts.size();
        Progress progress = new Progress(prompts, sampling.maxNewTokens());
        List<int[]> rows = new ArrayList<>(prompts);
        try (NoGradGuard noGrad = new NoGradGuard()) {
            for (int t = 0; t < sampling.maxNewTokens(); t++) {
                long[] next;
                try (PointerScope scope = new PointerScope()) {
                    Batch b = Collator.leftPadded(rows, padId).withImages(images).to(model.device());
                    Tensor logits = model.forward(b);
                    next = toArray(sampling.next(logits.select(1, b.seqLen() - 1), b.inputIds(), rng), n);
                }
                if (progress.add(next, stopIds)) {
                    break;
                }
                for (int r = 0; r < n; r++) {
                    int[] grown = Arrays.copyOf(rows.get(r), rows.get(r).length + 1);
                    grown[grown.length - 1] = (int) next[r];
                    rows.set(r, grown);
                }
            }
        }
        return progress.outputs();
    }

    private static long[] toArray(Tensor ids, int n) {
        Tensor c = ids.to(new org.bytedeco.pytorch.Device(torch.DeviceType.CPU), ScalarType.Long).contiguous();
        long[] out = new long[n];
        new LongPointer(c.data_ptr()).capacity(n).get(out);
        return out;
    }

    /** Each row's generated tokens so far and whether it has stopped. */
    private static final class Progress {
        private final int[][] tokens;
        private final int[] lengths;
        private final boolean[] stopped;

        Progress(List<int[]> prompts, int maxNewTokens) {
            tokens = new int[prompts.size()][maxNewTokens];
            lengths = new int[prompts.size()];
            stopped = new boolean[prompts.size()];
        }

        /** Appends a step's tokens to the rows still running; true when every row has stopped. */
        boolean add(long[] next, Set<Integer> stopIds) {
            boolean all = true;
            for (int r = 0; r < next.length; r++) {
                if (stopped[r]) {
                    continue;
                }
                tokens[r][lengths[r]++] = (int) next[r];
                stopped[r] = stopIds.contains((int) next[r]);
                all &= stopped[r];
            }
            return all;
        }

        List<Output> outputs() {
            List<Output> out = new ArrayList<>();
            for (int r = 0; r < tokens.length; r++) {
                out.add(new Output(Arrays.copyOf(tokens[r], lengths[r]), stopped[r]));
            }
            return out;
        }
    }
}
