package dev.sparksft.train;

import dev.sparksft.data.Batch;
import dev.sparksft.dist.Sharding;
import dev.sparksft.loss.SftLoss;
import dev.sparksft.model.CausalLm;
import dev.sparksft.model.SparseMoe;
import dev.sparksft.optim.LayerwiseOptimizer;
import dev.sparksft.runtime.Autocast;
import java.util.ArrayList;
import java.util.List;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.BoolOptional;
import org.bytedeco.pytorch.Generator;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;

/**
 * One micro-batch's forward and backward with activation checkpointing per decoder layer
 * (LLaMA-Factory's default; off with disable_gradient_checkpointing). The forward pass keeps only
 * each layer's input, (batch, seq, hidden), and no autograd graph inside the layers; the backward
 * pass goes down the layers, recomputing each one's forward with a graph and backpropagating the
 * gradient of its output into its parameters and its input:
 * <pre>
 *   x_0 = embed(ids)                          graph kept when the embedding trains
 *   x_{i+1} = layer_i(x_i)                    no graph; x_i kept        (i = 0 .. L-1)
 *   loss = sum(token losses(head(x_L))) / N   graph from x_L up; backward gives g_L = dloss/dx_L
 *   g_i = vjp(layer_i, x_i, g_{i+1})          recompute layer i with a graph, backward with g_{i+1}
 *   embed: backward with g_0
 * </pre>
 * The recomputation runs the same kernels on the same inputs (under the same autocast), and
 * LoRA dropout replays its masks (the generator state before each layer is saved and restored),
 * so gradients equal the run without checkpointing. Layers below the lowest one that trains are
 * neither recomputed nor backpropagated through (LoRA on the upper layers, freeze, BAdam).
 * Returns sum(token losses) for the log.
 *
 * <p>Under ZeRO stage 3 this loop is where a rank holds other ranks' trainable tensors: each
 * piece's (the embedding's, layer i's, the head's) are {@link Sharding#gather gathered} right
 * before its forward and released after; in the backward pass layer i is gathered again for its
 * recomputation, and once it has backpropagated its gradients are reduced to their owners and
 * its weights released. The embedding, final norm and head's gradients are reduced at the end of
 * the micro-batch (a tied embedding gets gradients from both ends). A rank without data for the
 * micro-step makes the same calls in {@link #idle}. Without stage 3 every one of these calls is a no-op.
 * With overlap_gradient_reduction, each piece's gradients are reported final to
 * {@link Sharding#gradientsReady} as its backward ends (the head's without a tied embedding,
 * layer i's, then everything outside the layers), so stages 0 to 2 start their buckets'
 * reductions during the step's last micro-batch, and stage 3's layer reductions are started
 * rather than waited for, all of them waited for at the end.
 */
final class ActivationCheckpointing {
    private ActivationCheckpointing() {}

    static double forwardBackward(CausalLm model, Batch b, SftLoss loss, long numTargets, boolean bf16) {
        return forwardBackward(model, b, null, loss, numTargets, bf16, Sharding.none(), null, 0);
    }

    /** {@link #forwardBackward(CausalLm, Batch, SftLoss, long, boolean)}, gathering and reducing as {@code shards}' stage asks. */
    static double forwardBackward(CausalLm model, Batch b, SftLoss loss, long numTargets, boolean bf16, Sharding shards) {
        return forwardBackward(model, b, null, loss, numTargets, bf16, shards, null, 0);
    }

    /** {@link #forwardBackward(CausalLm, Batch, Tensor, SftLoss, long, boolean, Sharding, LayerwiseOptimizer, double)} without a reference. */
    static double forwardBackward(CausalLm model, Batch b, SftLoss loss, long numTargets, boolean bf16, Sharding shards,
                                  LayerwiseOptimizer layerwise, double lr) {
        return forwardBackward(model, b, null, loss, numTargets, bf16, shards, layerwise, lr, null);
    }

    /** The next overload without the router term. */
    static double forwardBackward(CausalLm model, Batch b, Tensor refLogits, SftLoss loss, long numTargets, boolean bf16,
                                  Sharding shards, LayerwiseOptimizer layerwise, double lr) {
        return forwardBackward(model, b, refLogits, loss, numTargets, bf16, shards, layerwise, lr, null);
    }

    /**
     * {@link #forwardBackward(CausalLm, Batch, SftLoss, long, boolean, Sharding)} with ASFT's reference
     * logits ({@code refLogits}, (batch, seq, vocab) without a graph, or null) that, with
     * {@code layerwise} (null: none), steps each group at learning rate {@code lr} as soon as its
     * gradients are complete and frees them: the final norm and the LM head after the head's
     * backward, layer i after its own, the embedding at the end (a tied embedding, which the head
     * reads too, only then). So at most the head's, one layer's and the embedding's gradients exist
     * at once. A stepped layer is not read again: the gradient passed down was computed before.
     * With {@code aux} (a mixture of experts' load-balancing term, null: none) the forward keeps
     * the router logits (no graph) to fix each expert's routed fraction, and each recomputed
     * sparse layer backpropagates its share of the term ({@link SparseMoe#layerShare}) with its output.
     */
    static double forwardBackward(CausalLm model, Batch b, Tensor refLogits, SftLoss loss, long numTargets, boolean bf16,
                                  Sharding shards, LayerwiseOptimizer layerwise, double lr, RouterAux aux) {
        int numLayers = model.numLayers();
        int lowest = lowest(model);           // the lowest layer whose input gradient is needed
        Generator dropout = model.adapter() == null ? null : model.adapter().dropoutGenerator();
        PointerScope step = PointerScope.getInnerScope();   // the micro-batch's scope: what outlives a layer goes there
        List<Tensor> inputs = new ArrayList<>(numLayers + 1);   // x_0 .. x_L, (batch, seq, hidden) each
        List<Tensor> dropoutStates = new ArrayList<>(numLayers);
        Tensor embedded;
        CausalLm.Context ctx;
        Tensor top;
        Tensor sum;
        // one autocast region per piece, not one for the whole forward: leaving a region drops
        // autocast's cache of bf16 weight copies, which would otherwise hold every layer's at once
        shards.gather(model.embeddingWeights());
        try (Autocast autocast = Autocast.bf16(model.device(), bf16)) {
            embedded = model.embed(b);                // with a vision-language model's images
            ctx = model.context(b);
        }
        shards.release(model.embeddingWeights());   // its backward needs the ids and the vocabulary size only
        List<Tensor> router = new ArrayList<>();    // the sparse layers' logits, (batch * seq, experts), no graph
        Tensor shareWeights = null;
        try (NoGradGuard noGrad = new NoGradGuard()) {
            Tensor x = embedded.detach();
            inputs.add(x);
            CausalLm.Context forwardCtx = aux == null ? ctx : ctx.collectingRouterLogits(router);
            for (int i = 0; i < numLayers; i++) {
                dropoutStates.add(dropout == null ? null : dropout.get_state());
                shards.gather(shards.layerTensors(i));
                // the layer's intermediates are freed with its own scope; only its output is kept
                try (PointerScope layer = new PointerScope(); Autocast autocast = Autocast.bf16(model.device(), bf16)) {
                    int before = router.size();
                    x = keep(model.layer(i, x, forwardCtx), layer, step);
                    for (int r = before; r < router.size(); r++) {
                        keep(router.get(r), layer, step);
                    }
                }
                shards.release(shards.layerTensors(i));
                inputs.add(x);
            }
        }
        if (aux != null) {
            try (NoGradGuard noGrad = new NoGradGuard()) {
                aux.term(router, b.attentionMask());                    // its value, for the log
                shareWeights = SparseMoe.shareWeights(router, b.attentionMask(), aux.moe.numExperts(), aux.moe.topK())
                        .mul(new Scalar(aux.weight));                   // (experts)
            }
        }
        top = inputs.get(numLayers).detach().requires_grad_(true);
        shards.gather(model.headWeights());
        try (Autocast autocast = Autocast.bf16(model.device(), bf16)) {
            sum = loss.sum(model.head(top), b.labels(), refLogits);
        }
        Tensor afterForward = dropout == null ? null : dropout.get_state();
        sum.div(new Scalar((double) numTargets)).backward();
        shards.release(model.headWeights());         // the head's graph is gone: its gradients stay until the end
        List<String> head = new ArrayList<>(model.headWeights());
        head.removeAll(model.embeddingWeights());       // tied: the embedding's backward adds to it later
        shards.gradientsReady(head);                    // overlap: the head's bucket leaves while the layers run
        if (layerwise != null) {
            layerwise.stepNow(head, lr);
        }
        // grad() is a reference into the leaf's autograd state: detach() gives an owned handle to the same storage
        Tensor grad = top.grad().detach();                               // dloss/dx_L
        for (int i = numLayers - 1; i >= lowest && grad.defined(); i--) {
            boolean needInputGrad = i > lowest || model.embeddingTrains();
            if (dropout != null) {
                dropout.set_state(dropoutStates.get(i));
            }
            shards.gather(shards.layerTensors(i));
            try (PointerScope layer = new PointerScope()) {
                Tensor x = inputs.get(i).detach().requires_grad_(needInputGrad);
                Tensor y;
                List<Tensor> layerRouter = new ArrayList<>();
                try (Autocast autocast = Autocast.bf16(model.device(), bf16)) {   // recomputed, with its graph
                    y = model.layer(i, x, aux == null ? ctx : ctx.collectingRouterLogits(layerRouter));
                }
                if (layerRouter.isEmpty()) {
                    backward(y, grad);
                } else {                                                 // + this layer's share of coef / M x aux
                    Tensor share = SparseMoe.layerShare(layerRouter.get(0), b.attentionMask(), shareWeights);
                    torch.backward(new TensorVector(y, share), new TensorVector(grad, torch.ones_like(share,
                            new org.bytedeco.pytorch.TensorOptions(), new org.bytedeco.pytorch.MemoryFormatOptional())),
                            new BoolOptional(), false, new TensorVector());
                }
                grad = needInputGrad ? keep(x.grad().detach(), layer, step) : new Tensor();
            }
            shards.reduceToOwners(shards.layerTensors(i));   // stage 3 (with overlap: started, not awaited)
            shards.gradientsReady(shards.layerTensors(i));   // stages 0-2 with overlap, the step's last micro-batch
            shards.release(shards.layerTensors(i));
            if (layerwise != null) {
                layerwise.stepNow(shards.layerTensors(i), lr);
            }
        }
        if (model.embeddingTrains() && lowest == 0 && grad.defined()) {
            shards.gather(model.embeddingWeights());   // its gradient accumulates into the whole shape
            backward(embedded, grad);
            shards.release(model.embeddingWeights());
        }
        shards.reduceToOwners(shards.outsideLayers());
        shards.gradientsReady(shards.outsideLayers());
        shards.awaitReductions();   // stage 3 with overlap: the owners' sums are in before the next micro-batch adds
        if (layerwise != null) {
            layerwise.stepNow(shards.outsideLayers(), lr);
        }
        if (dropout != null) {
            dropout.set_state(afterForward);     // the next micro-batch draws what it would draw unchecked
        }
        return sum.item_double();
    }

    /**
     * ZeRO stage 3, a rank without data for this micro-step: the gathers, reductions and releases
     * of {@link #forwardBackward} in the same order, computing nothing, so every rank makes the
     * same collectives (invariant 3). It contributes zero gradients: where another rank holds one,
     * the reduction sends zeros. In the backward loop of forwardBackward the gradient is defined
     * down to the lowest layer and, when the embedding trains, below it, so the conditions here
     * are the same ones.
     */
    static void idle(CausalLm model, Sharding shards) {
        int numLayers = model.numLayers();
        int lowest = lowest(model);
        shards.gather(model.embeddingWeights());
        shards.release(model.embeddingWeights());
        for (int i = 0; i < numLayers; i++) {
            shards.gather(shards.layerTensors(i));
            shards.release(shards.layerTensors(i));
        }
        shards.gather(model.headWeights());
        shards.release(model.headWeights());
        for (int i = numLayers - 1; i >= lowest; i--) {
            shards.gather(shards.layerTensors(i));
            shards.reduceToOwners(shards.layerTensors(i));
            shards.release(shards.layerTensors(i));
        }
        if (model.embeddingTrains() && lowest == 0) {
            shards.gather(model.embeddingWeights());
            shards.release(model.embeddingWeights());
        }
        shards.reduceToOwners(shards.outsideLayers());
        shards.awaitReductions();
    }

    /** The lowest layer whose input gradient is needed: 0 when the embedding trains, else the lowest that trains. */
    static int lowest(CausalLm model) {
        int lowest = 0;
        while (lowest < model.numLayers() && !model.embeddingTrains() && !model.layerTrains(lowest)) {
            lowest++;
        }
        return lowest;
    }

    /** Backpropagates {@code grad}, the loss's gradient with respect to {@code output}, into every leaf. */
    private static void backward(Tensor output, Tensor grad) {
        torch.backward(new TensorVector(output), new TensorVector(grad), new BoolOptional(), false, new TensorVector());
    }

    /** Moves {@code t} from the closing {@code inner} scope to {@code outer}, so it outlives the layer. */
    private static Tensor keep(Tensor t, PointerScope inner, PointerScope outer) {
        if (outer != null) {
            outer.attach(t);
        } else {
            t.retainReference();
        }
        inner.detach(t);
        return t;
    }
}
