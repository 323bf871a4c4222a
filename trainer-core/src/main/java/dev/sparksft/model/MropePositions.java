package dev.sparksft.model;

import dev.sparksft.image.VisionInputs;
import dev.sparksft.UserError;
import org.bytedeco.javacpp.LongPointer;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * Qwen2-VL's M-RoPE position ids, as transformers' get_rope_index computes them: per row, over its real
 * tokens (attention mask non-zero), a run of text gets positions p, p + 1, ... on all three axes (time,
 * height, width); a run of image tokens is the next image's grid of merged patches, token (f, i, j) at
 * (p + f, p + i, p + j) for its frame f, row i and column j (in the processor's merge-block order), after
 * which p moves on by max(h, w) / merge; padded positions are 0. The rope delta of a row is its largest
 * position + 1 minus its number of real tokens: a decode step at cache position c is at c + delta.
 *
 * @param positionIds (3, batch, seq) int64, for {@link CausalLm#context}
 * @param ropeDeltas  per row, max position + 1 - real tokens (0 for a row without images)
 */
public record MropePositions(Tensor positionIds, long[] ropeDeltas) {

    /**
     * The positions of {@code inputIds} (batch, seq) with {@code attentionMask} (null: every token real) and the
     * images {@code vision} (null: text only) of a model configured by {@code vl}.
     */
    public static MropePositions of(Tensor inputIds, Tensor attentionMask, VisionInputs vision, Qwen2VlConfig vl) {
        int batch = (int) inputIds.size(0);
        int seq = (int) inputIds.size(1);
        long[] ids = longs(inputIds);
        long[] mask = attentionMask == null ? null : longs(attentionMask);
        int merge = vl.vision().mergeSize();
        long[] out = new long[3 * batch * seq];
        long[] deltas = new long[batch];
        int image = 0;
        for (int b = 0; b < batch; b++) {
            long p = 0;          // the next text position (transformers' current_pos)
            long max = -1;
            int real = 0;
            int t = 0;
            while (t < seq) {
                int at = b * seq + t;
                if (mask != null && mask[at] == 0) {
                    t++;
                    continue;
                }
                if (ids[at] == vl.videoTokenId()) {
                    throw new UserError("input_ids row " + b + " holds video_token_id " + vl.videoTokenId()
                            + " at position " + t + ": videos are not supported; give images");
                }
                if (ids[at] != vl.imageTokenId()) {
                    put(out, batch, seq, b, t, p, p, p);
                    max = Math.max(max, p);
                    p++;
                    real++;
                    t++;
                    continue;
                }
                int run = 0;                                            // the image's tokens, padding skipped
                int[] grid = vision == null || image >= vision.numImages() ? null : vision.grid(image);
                if (grid == null) {
                    throw new UserError("input_ids row " + b + " has image tokens (image_token_id " + vl.imageTokenId()
                            + ") at position " + t + " but the batch gives " + (vision == null ? 0 : vision.numImages())
                            + " image(s); each run of image tokens needs its image");
                }
                int h = grid[1] / merge;
                int w = grid[2] / merge;
                long tokens = (long) grid[0] * h * w;
                for (; t < seq && run < tokens; t++) {
                    at = b * seq + t;
                    if (mask != null && mask[at] == 0) {
                        continue;
                    }
                    if (ids[at] != vl.imageTokenId()) {
                        break;
                    }
                    long f = run / ((long) h * w);
                    long i = run / w % h;
                    long j = run % w;
                    put(out, batch, seq, b, t, p + f, p + i, p + j);
                    max = Math.max(max, Math.max(p + f, Math.max(p + i, p + j)));
                    run++;
                }
                boolean more = t < seq && ids[b * seq + t] == vl.imageTokenId() && (mask == null || mask[b * seq + t] != 0);
                if (run != tokens || more) {
                    throw new UserError("input_ids row " + b + ": image " + image + " (grid t,h,w " + grid[0] + ","
                            + grid[1] + "," + grid[2] + ") needs " + tokens + " consecutive image tokens but the run has "
                            + (more ? "more" : String.valueOf(run)) + "; the image tokens must match the images' grids");
                }
                real += run;
                p += Math.max(h, w);
                image++;
            }
            deltas[b] = max + 1 - real;
        }
        if (vision != null && image != vision.numImages()) {
            throw new UserError("the batch gives " + vision.numImages() + " images but input_ids has image tokens for "
                    + image + "; each image needs its run of image tokens (image_token_id " + vl.imageTokenId() + ")");
        }
        Tensor positions = Tensor.create(out, 3, batch, seq).to(inputIds.device(), ScalarType.Long);
        return new MropePositions(positions, deltas);
    }

    /**
     * The positions of decode steps after a prefill these positions were computed for: {@code textPositions}
     * (batch, seq), each new token's 1-D position as a text model's generation has it (its row's real tokens
     * before it), plus the row's rope delta, on all three axes: (3, batch, seq), as transformers' generation
     * continues after a prefill with images.
     */
    public Tensor decodePositions(Tensor textPositions) {
        Tensor deltas = Tensor.create(ropeDeltas, ropeDeltas.length, 1).to(textPositions.device(), ScalarType.Long);
        return textPositions.add(deltas).unsqueeze(0).expand(3, textPositions.size(0), textPositions.size(1)).contiguous();
    }

    private static void put(long[] out, int batch, int seq, int b, int t, long time, long height, long width) {
        int plane = batch * seq;
        out[b * seq + t] = time;
        out[plane + b * seq + t] = height;
        out[2 * plane + b * seq + t] = width;
    }

    private static long[] longs(Tensor t) {
        Tensor c = t.to(new org.bytedeco.pytorch.Device(org.bytedeco.pytorch.global.torch.DeviceType.CPU), ScalarType.Long)
                .contiguous();
        long[] out = new long[(int) c.numel()];
        new LongPointer(c.data_ptr()).capacity(out.length).get(out);
        return out;
    }
}
