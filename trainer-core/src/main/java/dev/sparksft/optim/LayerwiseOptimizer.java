package dev.sparksft.optim;

import java.util.Collection;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;

/**
 * Layer-wise GaLore and APOLLO (galore_layerwise, apollo_layerwise): each trainable tensor is
 * stepped as soon as its gradient is complete, and its gradient freed right after, so that the
 * gradients of the whole model never exist at once. LLaMA-Factory gives every parameter its own
 * optimizer and scheduler, stepped from a post-accumulate-grad hook; here one {@link ProjectedAdamW}
 * steps tensor by tensor, which is the same arithmetic: a tensor's update reads only its own
 * gradient and state, and every tensor is updated once per step with the step's learning rate,
 * so all update counts and learning rates stay equal. LLaMA-Factory's per-parameter schedulers do
 * the same: each parameter's scheduler hook runs after its optimizer hook, so step k uses lr(k) for
 * every parameter, as here. (There a parameter that gets no gradient in a step skips both hooks
 * and falls behind; here its count advances without an update, as in the plain optimizer.)
 * With clipping off the weights equal those of the plain ProjectedAdamW bit for bit.
 * <p>A step: the trainer's backward pass calls {@link #stepNow} with each group whose gradient is
 * complete (with activation checkpointing: the LM head and final norm after the head's backward,
 * each decoder layer after its own, the embedding at the end); {@link #step} then ends the step,
 * stepping in trainable order whatever is left (without checkpointing: every tensor, one after
 * another, each gradient freed after its update).
 * <p>No gradient clipping: a clip scales all gradients by their global norm, which is known only
 * once the last gradient exists, after the others have been applied. LLaMA-Factory clips nothing
 * either (Hugging Face's clip runs after the backward pass, over gradients the hooks already freed).
 * {@link #gradNorm} is the step's global L2 norm before the updates, summed as they are applied.
 * <p>The state and its names are the plain ProjectedAdamW's, so checkpoints of both modes are alike.
 */
public final class LayerwiseOptimizer implements Optimizer {
    private final ProjectedAdamW inner;
    private final Map<String, Tensor> params = new LinkedHashMap<>();   // trainable order
    private final Set<String> stepped = new HashSet<>();                // in the step under way
    private long t;                 // the update count of the step under way; 0 between steps
    private double sumSquares;      // of the gradients applied in the step under way
    private double gradNorm;        // of the last finished step
    private long peakGradientBytes; // the most gradient bytes of these tensors that existed at once, over all steps

    /** @param params the tensors {@code inner} steps, by name (all of them: nothing is sharded) */
    public LayerwiseOptimizer(ProjectedAdamW inner, Map<String, Tensor> params) {
        if (!inner.names().equals(List.copyOf(params.keySet()))) {
            throw new IllegalStateException("layer-wise stepping needs the optimizer of every trainable tensor, got "
                    + inner.names().size() + " of " + params.size());
        }
        this.inner = inner;
        this.params.putAll(params);
    }

    /**
     * Steps those of {@code names} that this optimizer holds and has not stepped in this step, with
     * learning rate {@code lr}, and frees their gradients (param.grad = None). The caller promises
     * that their gradients are complete: nothing later in the step adds to them.
     */
    public void stepNow(Collection<String> names, double lr) {
        if (t == 0) {
            t = inner.advance();
        }
        // gradients only appear between these calls and are freed in them: the most exist at entry
        long bytes = 0;
        try (PointerScope scope = new PointerScope()) {
            for (Tensor p : params.values()) {
                if (p.grad().defined()) {
                    bytes += p.grad().nbytes();
                }
            }
        }
        peakGradientBytes = Math.max(peakGradientBytes, bytes);
        for (String name : names) {
            if (params.containsKey(name) && stepped.add(name)) {
                stepAndFree(name, lr);
            }
        }
    }

    /** Ends the step: the tensors not stepped yet, in trainable order, then the count of the next step begins. */
    @Override
    public void step(double lr) {
        stepNow(params.keySet(), lr);
        gradNorm = Math.sqrt(sumSquares);
        sumSquares = 0;
        stepped.clear();
        t = 0;
    }

    private void stepAndFree(String name, double lr) {
        Tensor p = params.get(name);
        if (!p.grad().defined()) {
            return;   // no gradient this step: as the plain optimizer, the tensor stays and its count advances
        }
        try (PointerScope scope = new PointerScope(); NoGradGuard noGrad = new NoGradGuard()) {
            double norm = p.grad().norm().item_double();
            sumSquares += norm * norm;
        }
        inner.stepTensor(name, lr, t);
        p.mutable_grad().put(new Tensor());   // its memory goes now, not after the step
    }

    /** The global L2 norm of the last finished step's gradients (unclipped). */
    public double gradNorm() {
        return gradNorm;
    }

    /**
     * The most bytes of gradients that existed at once so far (with activation checkpointing the
     * largest of the head's, one layer's and the embedding's; without it, all of them).
     */
    public long peakGradientBytes() {
        return peakGradientBytes;
    }

    @Override
    public long numSteps() {
        return inner.numSteps();
    }

    @Override
    public Map<String, Tensor> state() {
        return inner.state();
    }

    @Override
    public void load(Map<String, Tensor> state, long numSteps) {
        inner.load(state, numSteps);
    }
}
