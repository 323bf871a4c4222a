package dev.sparksft.data;

import dev.sparksft.image.VisionInputs;
import org.bytedeco.pytorch.Tensor;

/**
 * A collated batch, all (batch, seq) int64, with its images for a vision-language model.
 *
 * @param attentionMask 1 on real tokens, 0 on padding
 * @param positionIds   0.. from each row's first real token (a vision-language model computes its
 *                      M-RoPE positions from the ids and the images instead)
 * @param labels        -100 on padding and masked positions (unshifted)
 * @param images        the rows' images in order (pixel_values and image_grid_thw), null when none
 */
public record Batch(Tensor inputIds, Tensor attentionMask, Tensor positionIds, Tensor labels, VisionInputs images) {
    /** A batch without images. */
    public Batch(Tensor inputIds, Tensor attentionMask, Tensor positionIds, Tensor labels) {
        this(inputIds, attentionMask, positionIds, labels, null);
    }

    public long size() {
        return inputIds.size(0);
    }

    public long seqLen() {
        return inputIds.size(1);
    }

    /** This batch with {@code images} (null: none). */
    public Batch withImages(VisionInputs images) {
        return new Batch(inputIds, attentionMask, positionIds, labels, images);
    }

    /** This batch on {@code device} (the collator builds it on the CPU; a CPU target returns the same tensors). */
    public Batch to(org.bytedeco.pytorch.Device device) {
        org.bytedeco.pytorch.global.torch.ScalarType int64 = org.bytedeco.pytorch.global.torch.ScalarType.Long;
        VisionInputs moved = images == null ? null
                : new VisionInputs(images.pixelValues().to(device, images.pixelValues().scalar_type()), images.gridThw());
        return new Batch(inputIds.to(device, int64), attentionMask.to(device, int64), positionIds.to(device, int64),
                labels.to(device, int64), moved);
    }
}
