package dev.sparksft.loss;

import dev.sparksft.UserError;
import dev.sparksft.data.TokenizedExample;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

/**
 * Next-token cross entropy. Labels are shifted here and nowhere else (docs/ARCHITECTURE.md invariant 4):
 * logits[:, :-1] predict labels[:, 1:]; positions labelled {@link #IGNORE_INDEX} contribute 0.
 */
public final class CausalLmLoss {
    /** The label of positions that carry no loss; defined once for the whole project. */
    /** The label of a position that is not trained on: {@link TokenizedExample#IGNORE_INDEX}. */
    public static final int IGNORE_INDEX = TokenizedExample.IGNORE_INDEX;

    private CausalLmLoss() {}

    /**
     * Per-token losses.
     *
     * @param logits (batch, seq, vocab)
     * @param labels (batch, seq) int64, IGNORE_INDEX where masked
     * @return (batch, seq - 1) float32, -log p(label) at labelled positions and 0 elsewhere
     */
    public static Tensor tokenLosses(Tensor logits, Tensor labels) {
        return nll(shiftedLogProbs(logits), labels);
    }

    /**
     * @param logits (batch, seq, vocab)
     * @return (batch, seq - 1, vocab), at least float32: log-softmax of the logits that predict labels[:, 1:]
     */
    static Tensor shiftedLogProbs(Tensor logits) {
        long seq = logits.size(1);
        Tensor shiftLogits = logits.narrow(1, 0, seq - 1);           // (batch, seq-1, vocab)
        return torch.log_softmax(atLeastFloat32(shiftLogits), -1);
    }

    /**
     * {@link #tokenLosses} from {@link #shiftedLogProbs} (for a loss that needs the log-probabilities too).
     *
     * @param logProbs (batch, seq - 1, vocab)
     * @param labels   (batch, seq), unshifted
     */
    static Tensor nll(Tensor logProbs, Tensor labels) {
        long seq = labels.size(1);
        Tensor shiftLabels = labels.narrow(1, 1, seq - 1);           // (batch, seq-1)
        Tensor valid = shiftLabels.ne(new Scalar(IGNORE_INDEX));     // (batch, seq-1) bool
        Tensor safeLabels = shiftLabels.masked_fill(valid.logical_not(), new Scalar(0));
        Tensor nll = logProbs.gather(-1, safeLabels.unsqueeze(-1)).squeeze(-1).neg();
        return nll.masked_fill(valid.logical_not(), new Scalar(0.0));
    }

    /** Half-precision logits are upcast (as transformers does) before the softmax; float64 stays. */
    static Tensor atLeastFloat32(Tensor t) {
        int type = t.scalar_type().value;
        boolean half = type == torch.ScalarType.Half.value || type == torch.ScalarType.BFloat16.value;
        return half ? t.to(torch.ScalarType.Float) : t;
    }

    /** Number of labelled (non-ignored) targets after the shift: the loss normaliser N. */
    public static long countTargets(Tensor labels) {
        long seq = labels.size(1);
        return labels.narrow(1, 1, seq - 1).ne(new Scalar(IGNORE_INDEX)).sum().item_long();
    }

    /** Mean token loss over the batch, as transformers' ForCausalLMLoss computes it. */
    public static double mean(Tensor logits, Tensor labels) {
        long n = countTargets(labels);
        if (n == 0) {
            throw new UserError("the batch has no labelled targets: every label is " + IGNORE_INDEX);
        }
        return tokenLosses(logits, labels).sum().item_double() / n;
    }
}
