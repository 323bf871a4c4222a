package dev.sparksft.data;

import dev.sparksft.loss.CausalLmLoss;

/**
 * A training example as token ids and labels of equal length; {@code labels[i]} is the token at
 * position i where it is trained on, and -100 where it is masked (prompt, history, padding).
 * Labels are not shifted here: the loss shifts them.
 *
 * @param index position of the source example in its dataset
 */
public record TokenizedExample(long index, int[] inputIds, int[] labels) implements java.io.Serializable {
    public TokenizedExample {
        if (inputIds.length != labels.length) {
            throw new IllegalStateException("input_ids (" + inputIds.length + ") and labels (" + labels.length
                    + ") differ in length");
        }
    }

    public int length() {
        return inputIds.length;
    }

    /** Labelled targets after the loss's shift (labels[1:] != -100): this example's share of N. */
    public int numTargets() {
        int n = 0;
        for (int i = 1; i < labels.length; i++) {
            if (labels[i] != CausalLmLoss.IGNORE_INDEX) {
                n++;
            }
        }
        return n;
    }
}
