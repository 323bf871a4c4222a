package dev.sparksft.data;

/**
 * A training example as token ids and labels of equal length; {@code labels[i]} is the token at
 * position i where it is trained on, and -100 where it is masked (prompt, history, padding).
 * Labels are not shifted here: the loss shifts them.
 *
 * <p>A packed example ({@link Packing}) holds several sequences back to back: their lengths are
 * {@code segmentLengths}, position ids restart at each, and with {@code isolated} (neat_packing)
 * attention stays within each.
 *
 * @param index position of the source example in its dataset (of the pack, for a packed example)
 */
public record TokenizedExample(long index, int[] inputIds, int[] labels, int[] segmentLengths, boolean isolated)
        implements java.io.Serializable {
    /** The label of a position that is not trained on (prompt, history, padding): PyTorch's ignore_index. */
    public static final int IGNORE_INDEX = -100;

    public TokenizedExample {
        if (inputIds.length != labels.length) {
            throw new IllegalStateException("input_ids (" + inputIds.length + ") and labels (" + labels.length
                    + ") differ in length");
        }
        if (java.util.Arrays.stream(segmentLengths).sum() != inputIds.length) {
            throw new IllegalStateException("segment lengths " + java.util.Arrays.toString(segmentLengths)
                    + " do not add up to " + inputIds.length + " tokens");
        }
    }

    /** One sequence. */
    public TokenizedExample(long index, int[] inputIds, int[] labels) {
        this(index, inputIds, labels, new int[] {inputIds.length}, false);
    }

    /** The same tokens under another index. */
    public TokenizedExample withIndex(long newIndex) {
        return new TokenizedExample(newIndex, inputIds, labels, segmentLengths, isolated);
    }

    public int length() {
        return inputIds.length;
    }

    /** Labelled targets after the loss's shift (labels[1:] != -100): this example's share of N. */
    public int numTargets() {
        int n = 0;
        for (int i = 1; i < labels.length; i++) {
            if (labels[i] != IGNORE_INDEX) {
                n++;
            }
        }
        return n;
    }
}
