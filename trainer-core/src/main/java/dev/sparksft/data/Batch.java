package dev.sparksft.data;

import org.bytedeco.pytorch.Tensor;

/**
 * A collated batch, all (batch, seq) int64.
 *
 * @param attentionMask 1 on real tokens, 0 on padding
 * @param positionIds   0.. from each row's first real token
 * @param labels        -100 on padding and masked positions (unshifted)
 */
public record Batch(Tensor inputIds, Tensor attentionMask, Tensor positionIds, Tensor labels) {
    public long size() {
        return inputIds.size(0);
    }

    public long seqLen() {
        return inputIds.size(1);
    }
}
