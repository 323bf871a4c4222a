package dev.sparksft.model;

import java.util.ArrayList;
import java.util.List;
import org.bytedeco.pytorch.Tensor;

/**
 * Qwen2.5-VL's window attention order (transformers' get_vision_window_index): the merged tokens of each
 * image regrouped window by window, windows of window_size / (merge x patch) merged tokens a side
 * (the last row and column of windows shorter where the grid does not divide), and the windows'
 * boundaries in patches. The vision tower reorders its patches by {@link #reorder}, attends within the
 * windows on its windowed blocks, and {@link #restore}s the merger's output to the processor's order.
 *
 * @param index      per merged token in window order, its index in the processor's order
 * @param cuSeqlens  the windows' cumulative lengths in patches, 0 first (empty windows dropped)
 */
record WindowIndex(long[] index, int[] cuSeqlens) {

    /** The window order of the images {@code grids} for {@code v}'s window_size, patch_size and spatial_merge_size. */
    static WindowIndex of(int[][] grids, VisionConfig v) {
        int m = v.mergeSize();
        int side = v.windowSize() / m / v.patchSize();                   // vit_merger_window_size
        List<Long> index = new ArrayList<>();
        List<Integer> cu = new ArrayList<>(List.of(0));
        long base = 0;
        for (int[] g : grids) {
            int t = g[0];
            int h = g[1] / m;
            int w = g[2] / m;
            // padded up to whole windows, with a whole extra window where the side divides (as transformers pads)
            int windowsH = (h + side - h % side) / side;
            int windowsW = (w + side - w % side) / side;
            for (int f = 0; f < t; f++) {
                for (int wh = 0; wh < windowsH; wh++) {
                    for (int ww = 0; ww < windowsW; ww++) {
                        int count = 0;
                        for (int i = 0; i < side; i++) {
                            for (int j = 0; j < side; j++) {
                                int r = wh * side + i;
                                int c = ww * side + j;
                                if (r < h && c < w) {
                                    index.add(base + (long) f * h * w + (long) r * w + c);
                                    count++;
                                }
                            }
                        }
                        int end = cu.get(cu.size() - 1) + count * v.mergeUnit();
                        if (end != cu.get(cu.size() - 1)) {                 // unique_consecutive: empty windows dropped
                            cu.add(end);
                        }
                    }
                }
            }
            base += (long) t * h * w;
        }
        return new WindowIndex(index.stream().mapToLong(Long::longValue).toArray(),
                cu.stream().mapToInt(Integer::intValue).toArray());
    }

    /** (patches, d) in the processor's order to window order: merge units of merge^2 patches move together. */
    Tensor reorder(Tensor x, int mergeUnit) {
        long n = x.size(0);
        Tensor units = x.reshape(n / mergeUnit, mergeUnit, x.size(1));      // (merged, unit, d)
        return units.index_select(0, indexTensor(x)).reshape(n, x.size(1));
    }

    /** (merged, d) in window order back to the processor's order (x[argsort(index)]). */
    Tensor restore(Tensor merged) {
        return merged.index_select(0, indexTensor(merged).argsort());
    }

    private Tensor indexTensor(Tensor like) {
        return Tensor.create(index, index.length).to(like.device(), org.bytedeco.pytorch.global.torch.ScalarType.Long);
    }
}
