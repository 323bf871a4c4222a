package dev.sparksft.train;

import dev.sparksft.data.Batch;
import dev.sparksft.data.Collator;
import dev.sparksft.data.TokenizedExample;
import dev.sparksft.loss.CausalLmLoss;
import dev.sparksft.model.CausalLm;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.LongOptional;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * Teacher-forced evaluation: {@code loss} = total cross entropy over all labelled tokens of the
 * set / their count (not a mean of batch means), and with {@code compute_accuracy}
 * LLaMA-Factory's ComputeAccuracy: per example, the share of labelled positions where the argmax
 * of logits[t] equals labels[t+1], averaged over examples.
 */
public final class Evaluator {
    private Evaluator() {}

    /** Sums over a set of examples, which add up across ranks; {@link #metrics} turns them into means. */
    public record Sums(double lossSum, long numTargets, double accuracySum, long accuracyCount) {}

    public static Map<String, Double> evaluate(CausalLm model, List<TokenizedExample> examples, int batchSize,
                                               int padId, boolean accuracy, BatchImages images) {
        return metrics(sums(model, examples, batchSize, padId, accuracy, images), accuracy);
    }

    /**
     * eval_results.json's figures as Hugging Face's Trainer.evaluate reports them: each metric
     * with the eval_ prefix, then eval_runtime and eval_samples_per_second.
     */
    public static Map<String, Object> results(Map<String, Double> metrics, double seconds, int numExamples) {
        Map<String, Object> r = new LinkedHashMap<>();
        metrics.forEach((k, v) -> r.put("eval_" + k, v));
        r.put("eval_runtime", seconds);
        r.put("eval_samples_per_second", numExamples / seconds);
        return r;
    }

    /** loss (and accuracy) from sums that may come from several ranks. */
    public static Map<String, Double> metrics(Sums s, boolean accuracy) {
        Map<String, Double> metrics = new LinkedHashMap<>();
        metrics.put("loss", s.numTargets() == 0 ? Double.NaN : s.lossSum() / s.numTargets());
        if (accuracy) {
            metrics.put("accuracy", s.accuracyCount() == 0 ? Double.NaN : s.accuracySum() / s.accuracyCount());
        }
        return metrics;
    }

    public static Sums sums(CausalLm model, List<TokenizedExample> examples, int batchSize, int padId,
                            boolean accuracy) {
        return sums(model, examples, batchSize, padId, accuracy, BatchImages.NONE);
    }

    /** {@link #sums(CausalLm, List, int, int, boolean)} with the examples' images read by {@code images}. */
    public static Sums sums(CausalLm model, List<TokenizedExample> examples, int batchSize, int padId,
                            boolean accuracy, BatchImages images) {
        double lossSum = 0;
        long numTargets = 0;
        double accuracySum = 0;
        long accuracyCount = 0;
        try (NoGradGuard noGrad = new NoGradGuard()) {
            for (int from = 0; from < examples.size(); from += batchSize) {
                try (PointerScope scope = new PointerScope()) {
                    Batch b = images.collate(examples.subList(from, Math.min(examples.size(), from + batchSize)), padId)
                            .to(model.device());
                    Tensor logits = model.forward(b);
                    lossSum += CausalLmLoss.tokenLosses(logits, b.labels()).sum().item_double();
                    numTargets += CausalLmLoss.countTargets(b.labels());
                    if (accuracy) {
                        long seq = b.seqLen();
                        Tensor preds = logits.narrow(1, 0, seq - 1).argmax(new LongOptional(-1), false);  // (batch, seq-1)
                        Tensor labels = b.labels().narrow(1, 1, seq - 1);
                        Tensor valid = labels.ne(new Scalar(TokenizedExample.IGNORE_INDEX));
                        Tensor correct = preds.eq(labels).logical_and(valid).to(ScalarType.Float).sum(new long[] {1});
                        Tensor counts = valid.to(ScalarType.Float).sum(new long[] {1});
                        for (int r = 0; r < b.size(); r++) {
                            double n = counts.get(r).item_double();
                            if (n > 0) { // examples without labels have no accuracy (numpy would give nan)
                                accuracySum += correct.get(r).item_double() / n;
                                accuracyCount++;
                            }
                        }
                    }
                }
            }
        }
        return new Sums(lossSum, numTargets, accuracySum, accuracyCount);
    }
}
