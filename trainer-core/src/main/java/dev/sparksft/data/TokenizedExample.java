package dev.sparksft.data;

import java.util.List;

/**
 * A training example as token ids and labels of equal length; {@code labels[i]} is the token at
 * position i where it is trained on, and -100 where it is masked (prompt, history, padding).
 * Labels are not shifted here: the loss shifts them.
 *
 * <p>A packed example ({@link Packing}) holds several sequences back to back: their lengths are
 * {@code segmentLengths}, position ids restart at each, and with {@code isolated} (neat_packing)
 * attention stays within each.
 *
 * <p>An example of an image template carries its images in the order their token spans appear in
 * {@code inputIds} ({@code <|vision_start|>}, grid.tokens(merge) x {@code <|image_pad|>},
 * {@code <|vision_end|>}): each image's resolved path (local path or Hadoop URI, read when the
 * example trains) and its patch grid as counted from the image's header, which the image
 * processor's grid must equal. Images cut away by cutoff_len are not listed. Empty for text.
 *
 * @param index position of the source example in its dataset (of the pack, for a packed example)
 */
public record TokenizedExample(long index, int[] inputIds, int[] labels, int[] segmentLengths, boolean isolated,
                               List<Image> images) implements java.io.Serializable {
    /**
     * One image of an example: where its pixels are, and its patch grid (temporal, height and width in
     * patches; HF's image_grid_thw row), whose t h w / merge_size^2 tokens the example holds for it.
     */
    public record Image(String path, int gridT, int gridH, int gridW) implements java.io.Serializable {
        public int patches() {
            return gridT * gridH * gridW;
        }
    }

    /** The label of a position that is not trained on (prompt, history, padding): PyTorch's ignore_index. */
    public static final int IGNORE_INDEX = -100;

    public TokenizedExample {
        images = images == null ? List.of() : List.copyOf(images);
        if (!images.isEmpty() && segmentLengths.length > 1) {
            throw new IllegalStateException("a packed example cannot hold images (packing refuses them)");
        }
        if (inputIds.length != labels.length) {
            throw new IllegalStateException("input_ids (" + inputIds.length + ") and labels (" + labels.length
                    + ") differ in length");
        }
        if (java.util.Arrays.stream(segmentLengths).sum() != inputIds.length) {
            throw new IllegalStateException("segment lengths " + java.util.Arrays.toString(segmentLengths)
                    + " do not add up to " + inputIds.length + " tokens");
        }
    }

    /** One text sequence. */
    public TokenizedExample(long index, int[] inputIds, int[] labels) {
        this(index, inputIds, labels, new int[] {inputIds.length}, false, List.of());
    }

    /** One sequence with its images. */
    public TokenizedExample(long index, int[] inputIds, int[] labels, List<Image> images) {
        this(index, inputIds, labels, new int[] {inputIds.length}, false, images);
    }

    /** The same tokens (and images) under another index. */
    public TokenizedExample withIndex(long newIndex) {
        return new TokenizedExample(newIndex, inputIds, labels, segmentLengths, isolated, images);
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
