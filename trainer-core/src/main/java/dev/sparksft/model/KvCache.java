package dev.sparksft.model;

import java.util.ArrayList;
import java.util.List;
import org.bytedeco.pytorch.Tensor;

/**
 * Keys and values of every position decoded so far, per layer, for incremental decoding. The
 * buffers are allocated once for the longest sequence (prompt + max_new_tokens), like
 * transformers' StaticCache, and each forward writes its new positions in place: a decoding step
 * allocates no cache memory and reads the first {@link #length()} positions as a view.
 */
public final class KvCache {
    private final List<Tensor> keys = new ArrayList<>();     // per layer: (batch, kv_heads, capacity, head_dim)
    private final List<Tensor> values = new ArrayList<>();
    private final long capacity;
    private long length;

    /** Room for {@code capacity} positions of {@code batch} rows, with the dtype and device of {@code like}. */
    public KvCache(ModelConfig cfg, long batch, long capacity, Tensor like) {
        this.capacity = capacity;
        long[] shape = {batch, cfg.numKvHeads(), capacity, cfg.headDim()};
        for (int i = 0; i < cfg.numLayers(); i++) {
            keys.add(like.new_zeros(shape));                       // like's dtype and device
            values.add(like.new_zeros(shape));
        }
    }

    /** Positions already stored (the same for every layer once a forward has finished). */
    public long length() {
        return length;
    }

    /**
     * Stores layer {@code layer}'s keys and values of the new positions (batch, kv_heads, new,
     * head_dim) after the cached ones and returns views of all of them (batch, kv_heads, length + new, head_dim).
     */
    Tensor[] append(int layer, Tensor k, Tensor v) {
        long added = k.size(2);
        if (length + added > capacity) {
            throw new IllegalStateException("KV cache full: " + length + " + " + added + " > " + capacity + " positions");
        }
        keys.get(layer).narrow(2, length, added).copy_(k);
        values.get(layer).narrow(2, length, added).copy_(v);
        long total = length + added;
        if (layer == keys.size() - 1) {
            length = total;                        // the last layer closes the forward pass
        }
        return new Tensor[] {keys.get(layer).narrow(2, 0, total), values.get(layer).narrow(2, 0, total)};
    }
}
