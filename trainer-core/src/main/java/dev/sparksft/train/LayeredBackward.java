package dev.sparksft.train;

import dev.sparksft.data.Batch;
import dev.sparksft.dist.Sharding;
import dev.sparksft.loss.SftLoss;
import dev.sparksft.model.CausalLm;
import dev.sparksft.model.ModelLayout;
import dev.sparksft.runtime.Autocast;
import java.util.ArrayList;
import java.util.List;
import org.bytedeco.pytorch.BoolOptional;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;

/**
 * The plain forward and backward (activation checkpointing off) of the step's last micro-batch
 * when gradients are reduced as the backward completes them (overlap_gradient_reduction): the
 * forward keeps every layer's graph, as the plain one does, but cut at the layer boundaries, so
 * the backward runs piece by piece (head, layer L-1, ..., layer 0, embedding) as
 * {@link ActivationCheckpointing}'s does, without recomputing anything, and tells
 * {@link Sharding#gradientsReady} after each piece:
 * <pre>
 *   x_0 = embed(ids)                       graph kept when the embedding trains
 *   y_i = layer_i(leaf(x_i)), x_{i+1} = y_i graph kept per layer, cut at its input leaf
 *   loss = sum(token losses(head(leaf(x_L)))) / N; backward gives g_L, the head's gradients are final
 *   backward(y_i, g_{i+1}) gives g_i = leaf(x_i).grad; layer i's gradients are final
 *   embed: backward with g_0
 * </pre>
 * The same kernels run on the same values as in one backward of the whole graph, a tensor with
 * two consumers in a layer (the residual stream) still sums its two incoming gradients in one
 * addition, and a tied embedding's two terms are added together before what earlier micro-batches
 * accumulated, as one backward adds them, so the gradients are the plain backward's
 * (bit-identical in the tests). Chosen over per-tensor autograd hooks: no Java callback runs inside libtorch's engine,
 * the order of completion is the model's own on every rank, and the pieces are the ones
 * checkpointing and ZeRO 3 already walk. A mixture of experts' load-balancing term ties every
 * sparse layer to one scalar, so with it the Trainer keeps the one-piece backward (its buckets
 * then leave after it).
 */
final class LayeredBackward {
    private LayeredBackward() {}

    /** Backpropagates sum(token losses) / N of {@code b} piece by piece; returns the sum. */
    static double forwardBackward(CausalLm model, Batch b, Tensor refLogits, SftLoss loss, long numTargets, boolean bf16,
                                  Sharding shards) {
        int numLayers = model.numLayers();
        int lowest = ActivationCheckpointing.lowest(model);
        List<Tensor> leaves = new ArrayList<>(numLayers);    // leaf(x_i), null below the lowest layer that trains
        List<Tensor> outputs = new ArrayList<>(numLayers);   // y_i
        Tensor embedded;
        Tensor top;
        Tensor sum;
        try (Autocast autocast = Autocast.bf16(model.device(), bf16)) {
            CausalLm.Context ctx = model.context(b);
            embedded = model.embed(b);                     // with a vision-language model's images
            Tensor x = embedded;
            for (int i = 0; i < numLayers; i++) {
                Tensor in = null;
                if (i >= lowest) {
                    in = x.detach().requires_grad_(i > lowest || model.embeddingTrains());
                    x = in;
                }
                x = model.layer(i, x, ctx);
                leaves.add(in);
                outputs.add(x);
            }
            top = x.detach().requires_grad_(true);
            sum = loss.sum(model.head(top), b.labels(), refLogits);
        }
        // a tied embedding gets two terms per micro-batch, the head's h and the lookup's e; one backward adds
        // them first and then to what earlier micro-batches left, G + (h + e): put G aside, add it back last
        Tensor tied = model.embeddingTrains() && model.headWeights().containsAll(model.embeddingWeights())
                ? model.weights().tensors().get(ModelLayout.EMBEDDING) : null;
        Tensor earlier = tied != null && tied.grad().defined() ? tied.grad().detach() : null;
        if (earlier != null) {
            tied.mutable_grad().put(new Tensor());
        }
        sum.div(new Scalar((double) numTargets)).backward();
        List<String> head = new ArrayList<>(model.headWeights());
        head.removeAll(model.embeddingWeights());     // tied: the embedding's backward adds to it later
        shards.gradientsReady(head);
        Tensor grad = top.grad().detach();            // dloss/dx_L
        for (int i = numLayers - 1; i >= lowest && grad.defined(); i--) {
            backward(outputs.get(i), grad);
            Tensor in = leaves.get(i);
            grad = in.requires_grad() ? in.grad().detach() : new Tensor();
            shards.gradientsReady(shards.layerTensors(i));
        }
        if (model.embeddingTrains() && lowest == 0 && grad.defined()) {
            backward(embedded, grad);
        }
        if (earlier != null) {
            try (NoGradGuard noGrad = new NoGradGuard()) {
                tied.grad().add_(earlier);
            }
        }
        shards.gradientsReady(shards.outsideLayers());
        return sum.item_double();
    }

    private static void backward(Tensor output, Tensor grad) {
        torch.backward(new TensorVector(output), new TensorVector(grad), new BoolOptional(), false, new TensorVector());
    }
}
