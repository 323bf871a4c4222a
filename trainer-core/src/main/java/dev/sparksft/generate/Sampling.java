package dev.sparksft.generate;

import dev.sparksft.UserError;
import org.bytedeco.pytorch.GeneratorOptional;
import org.bytedeco.pytorch.LongOptional;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.T_TensorTensor_T;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * How the next token is chosen, with LLaMA-Factory's generating arguments, in transformers' order
 * of logits processors: repetition penalty, then (sampling only) temperature, top-k and top-p,
 * then a draw from the softmax, or the argmax when do_sample is false. Each example draws from
 * its own CPU generator, seeded by (seed, the example's key): what an example generates does not
 * depend on which batch, order or Spark task it came in, so a run is reproducible anywhere.
 *
 * @param maxNewTokens the most tokens a row generates (the stop token included)
 */
public record Sampling(boolean doSample, double temperature, double topP, int topK, double repetitionPenalty,
                       int maxNewTokens, long seed) {
    public Sampling {
        if (maxNewTokens < 1) {
            throw new UserError("max_new_tokens must be >= 1, got " + maxNewTokens);
        }
        if (repetitionPenalty <= 0) {
            throw new UserError("repetition_penalty must be > 0 (1.0 = none), got " + repetitionPenalty);
        }
        if (doSample && temperature <= 0) {
            throw new UserError("temperature must be > 0 with do_sample: true (or set do_sample: false), got "
                    + temperature);
        }
        if (doSample && (topP <= 0 || topP > 1)) {
            throw new UserError("top_p must be in (0, 1], got " + topP);
        }
        if (topK < 0) {
            throw new UserError("top_k must be >= 0 (0 = off), got " + topK);
        }
    }

    public static Sampling greedy(int maxNewTokens) {
        return new Sampling(false, 1.0, 1.0, 0, 1.0, maxNewTokens, 0);
    }

    /** The random state of the rows of one batch: one generator per example. */
    public static final class Rng {
        private final org.bytedeco.pytorch.Generator[] generators;

        private Rng(org.bytedeco.pytorch.Generator[] generators) {
            this.generators = generators;
        }
    }

    /** Generators for the examples with these keys (their positions in the whole prediction set). */
    Rng newRng(long[] keys) {
        org.bytedeco.pytorch.Generator[] g = new org.bytedeco.pytorch.Generator[keys.length];
        for (int i = 0; i < keys.length; i++) {
            g[i] = dev.sparksft.runtime.Torch.generator(seed, keys[i]);
        }
        return new Rng(g);
    }

    /**
     * @param logits    (batch, vocab) of the last position
     * @param sequences (batch, length) every token so far (prompt, padding and generated), for the repetition penalty
     * @return (batch,) int64 next tokens
     */
    Tensor next(Tensor logits, Tensor sequences, Rng rng) {
        Tensor scores = logits.to(ScalarType.Float);
        if (repetitionPenalty != 1.0) {
            // RepetitionPenaltyLogitsProcessor: seen tokens' scores divided (positive) or multiplied (negative)
            Tensor seen = scores.gather(1, sequences);
            Tensor penalized = torch.where(seen.lt(new Scalar(0)), seen.mul(new Scalar(repetitionPenalty)),
                    seen.div(new Scalar(repetitionPenalty)));
            scores = scores.scatter(1, sequences, penalized);
        }
        if (!doSample) {
            return scores.argmax(new LongOptional(-1), false);
        }
        scores = scores.div(new Scalar(temperature));
        Scalar minusInf = new Scalar(Double.NEGATIVE_INFINITY);
        long vocab = scores.size(1);
        if (topK > 0 && topK < vocab) {
            // TopKLogitsWarper: drop everything below the k-th largest score
            Tensor kth = scores.topk(topK).get0().narrow(1, topK - 1, 1);      // (batch, 1)
            scores = scores.masked_fill(scores.lt(kth), minusInf);
        }
        if (topP < 1.0) {
            // TopPLogitsWarper: drop the least likely tokens whose total probability is at most 1 - top_p,
            // always keeping the most likely one
            T_TensorTensor_T sorted = scores.sort(-1, false);                  // ascending
            Tensor cumulative = sorted.get0().softmax(-1).cumsum(-1);
            Tensor remove = cumulative.le(new Scalar(1 - topP));
            remove.narrow(1, vocab - 1, 1).fill_(new Scalar(0));          // false
            scores = scores.masked_fill(remove.scatter(1, sorted.get1(), remove), minusInf);
        }
        Tensor probs = scores.softmax(-1).to(new org.bytedeco.pytorch.Device(torch.DeviceType.CPU), ScalarType.Float);
        long[] drawn = new long[(int) probs.size(0)];
        for (int r = 0; r < drawn.length; r++) {                            // each row from its own generator
            drawn[r] = torch.multinomial(probs.get(r), 1, false, new GeneratorOptional(rng.generators[r])).item_long();
        }
        return Tensor.create(drawn, drawn.length).to(logits.device(), ScalarType.Long);
    }
}
