package dev.sparksft.train;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparksft.model.ModelConfig;
import dev.sparksft.model.ModelWeights;
import java.nio.file.Path;
import java.util.Map;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.pytorch.Tensor;

/** Comparing saved models in tests: how far two trained models are apart, against how far training moved them. */
public final class ModelComparison {
    private ModelComparison() {}

    /** The parameters of the model saved in {@code dir}. */
    public static Map<String, Tensor> weights(Path dir) throws Exception {
        return ModelWeights.load(dir, ModelConfig.load(dir)).tensors();
    }

    public static float[] floats(Tensor t) {
        Tensor c = t.contiguous();
        float[] out = new float[(int) c.numel()];
        new FloatPointer(c.data_ptr()).capacity(out.length).get(out);
        return out;
    }

    /**
     * max |a - b| over all parameters, relative to max |a - initial| (the size of the updates);
     * fails when training moved no weight by {@code minUpdate}, so that a comparison cannot pass vacuously.
     */
    public static double relativeDifference(Map<String, Tensor> a, Map<String, Tensor> b, Map<String, Tensor> initial,
                                            double minUpdate) {
        double diff = 0;
        double update = 0;
        for (String name : a.keySet()) {
            float[] x = floats(a.get(name));
            float[] y = floats(b.get(name));
            float[] x0 = floats(initial.get(name));
            for (int i = 0; i < x.length; i++) {
                diff = Math.max(diff, Math.abs(x[i] - y[i]));
                update = Math.max(update, Math.abs(x[i] - x0[i]));
            }
        }
        assertTrue(update > minUpdate, "the runs must actually change the weights (max update " + update + ")");
        return diff / update;
    }
}
