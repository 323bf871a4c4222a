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

    /** This batch on {@code device} (the collator builds it on the CPU; a CPU target returns the same tensors). */
    public Batch to(org.bytedeco.pytorch.Device device) {
        org.bytedeco.pytorch.global.torch.ScalarType int64 = org.bytedeco.pytorch.global.torch.ScalarType.Long;
        return new Batch(inputIds.to(device, int64), attentionMask.to(device, int64), positionIds.to(device, int64),
                labels.to(device, int64));
    }
}
