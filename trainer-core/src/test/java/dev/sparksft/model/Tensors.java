package dev.sparksft.model;

import com.fasterxml.jackson.databind.JsonNode;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

/** Small conversions between JSON fixtures, Java arrays and tensors for tests. */
final class Tensors {
    private Tensors() {}

    /** A (rows, cols) int64 tensor from a JSON array of arrays. */
    static Tensor longs(JsonNode rows) {
        int r = rows.size();
        int c = rows.get(0).size();
        long[] data = new long[r * c];
        for (int i = 0; i < r; i++) {
            for (int j = 0; j < c; j++) {
                data[i * c + j] = rows.get(i).get(j).asLong();
            }
        }
        return Tensor.create(data, r, c);
    }

    static Tensor positions(long batch, long seq) {
        long[] data = new long[(int) (batch * seq)];
        for (int i = 0; i < data.length; i++) {
            data[i] = i % seq;
        }
        return Tensor.create(data, batch, seq);
    }

    static float[] floats(Tensor t) {
        Tensor c = t.to(ScalarType.Float).contiguous();
        float[] out = new float[(int) c.numel()];
        new FloatPointer(c.data_ptr()).capacity(out.length).get(out);
        return out;
    }
}
