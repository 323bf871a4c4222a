package dev.sparksft.train;

import dev.sparksft.model.MoeConfig;
import dev.sparksft.model.SparseMoe;
import java.util.List;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;

/**
 * A mixture of experts' router load-balancing term in one optimizer step, as LLaMA-Factory trains
 * it (output_router_logits on): each micro-batch m adds router_aux_loss_coef x aux_m, aux_m being
 * transformers' load_balancing_loss_func over m's sparse layers and attention mask, and the step
 * averages the micro-batches as HF's Trainer does across accumulation and DDP ranks:
 * <pre>
 *   loss = sum(token losses) / N  +  coef / M * sum_m aux_m      M: micro-batches with data, all ranks
 * </pre>
 * The cross-entropy part stays exact over the step; the aux part is HF's per-micro-batch value, so
 * it is the same for any split into the same micro-batches (ranks x accumulation), not for another
 * micro-batch size (aux_m is not additive over tokens).
 */
final class RouterAux {
    final MoeConfig moe;
    /** coef / M: the weight of one micro-batch's aux. */
    final double weight;
    /** sum of this rank's aux_m, for the log. */
    double sum;

    RouterAux(MoeConfig moe, long microBatches) {
        this.moe = moe;
        this.weight = moe.routerAuxLossCoef() / microBatches;
    }

    /** The model's aux term when it trains with one (a mixture of experts, coef > 0), else null. */
    static MoeConfig of(dev.sparksft.model.CausalLm model) {
        MoeConfig moe = model.config().moe();
        return moe != null && moe.routerAuxLossCoef() > 0 ? moe : null;
    }

    /** weight x aux_m of one micro-batch's router logits, with its graph; aux_m is added to {@link #sum}. */
    Tensor term(List<Tensor> routerLogits, Tensor attentionMask) {
        Tensor aux = SparseMoe.loadBalancingLoss(routerLogits, attentionMask, moe.numExperts(), moe.topK());
        sum += aux.item_double();
        return aux.mul(new Scalar(weight));
    }
}
