package dev.sparksft.model;

import java.util.List;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.T_TensorTensor_T;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * One layer's mixture-of-experts feedforward, as transformers' Qwen3MoeSparseMoeBlock and
 * MixtralSparseMoeBlock compute it: the router scores every expert, each token goes to its
 * top-k, and its output is the routing-weighted sum of those experts' SwiGLU MLPs.
 * <pre>
 *   logits  = router(h)                               (tokens, experts)
 *   probs   = softmax(logits) in float32              (tokens, experts)
 *   w, idx  = topk(probs, k)                          (tokens, k) each, largest first
 *   w       = w / sum(w)   when renormalised          (qwen3_moe: norm_topk_prob; mixtral: always)
 *   out[t]  = sum_j w[t, j] * expert_{idx[t, j]}(h[t])
 * </pre>
 * Computed simply: a loop over the experts, each gathering its routed tokens (index_select),
 * running on them only and adding its weighted output back (index_add), as the HF loop does.
 */
public final class SparseMoe {
    private final CausalLm.Proj router;      // (experts, hidden)
    private final List<CausalLm.Proj[]> experts;  // per expert: gate, up, down
    private final int topK;
    private final boolean renormalise;

    SparseMoe(CausalLm.Proj router, List<CausalLm.Proj[]> experts, int topK, boolean renormalise) {
        this.router = router;
        this.experts = List.copyOf(experts);
        this.topK = topK;
        this.renormalise = renormalise;
    }

    /** Every linear of the block: the router's, then each expert's gate, up and down. */
    List<CausalLm.Proj> projections() {
        List<CausalLm.Proj> all = new java.util.ArrayList<>();
        all.add(router);
        experts.forEach(e -> all.addAll(List.of(e)));
        return all;
    }

    /**
     * (batch, seq, hidden) to (batch, seq, hidden); the router's logits, (batch * seq, experts),
     * are added to {@code routerLogits} when it is not null (the load-balancing loss reads them).
     */
    Tensor apply(Tensor h, List<Tensor> routerLogits) {
        long hidden = h.size(-1);
        Tensor flat = h.reshape(-1, hidden);                                // (tokens, hidden)
        Tensor logits = router.apply(flat);                                 // (tokens, experts)
        if (routerLogits != null) {
            routerLogits.add(logits);
        }
        Tensor probs = logits.softmax(1, new ScalarTypeOptional(wide(logits.scalar_type())));
        T_TensorTensor_T top = probs.topk(topK, 1, true, true);
        Tensor weights = top.get0();                                        // (tokens, k)
        Tensor chosen = top.get1();                                         // (tokens, k) int64
        if (renormalise) {
            weights = weights.div(weights.sum(new long[] {1}, true, new ScalarTypeOptional()));
        }
        weights = weights.to(flat.scalar_type());
        Tensor out = torch.zeros_like(flat, new org.bytedeco.pytorch.TensorOptions(), new org.bytedeco.pytorch.MemoryFormatOptional());   // flat's dtype and device
        for (int e = 0; e < experts.size(); e++) {
            Tensor hits = torch.nonzero(chosen.eq(new Scalar((long) e)));   // (n, 2): token, slot
            if (hits.size(0) == 0) {
                continue;
            }
            Tensor tokens = hits.select(1, 0);                              // (n)
            Tensor slots = hits.select(1, 1).unsqueeze(1);                  // (n, 1)
            Tensor w = weights.index_select(0, tokens).gather(1, slots);    // (n, 1)
            CausalLm.Proj[] x = experts.get(e);
            Tensor in = flat.index_select(0, tokens);                       // (n, hidden)
            Tensor y = x[2].apply(torch.silu(x[0].apply(in)).mul(x[1].apply(in))).mul(w);
            out = out.index_add(0, tokens, y.to(out.scalar_type()));
        }
        return out.view(h.size(0), h.size(1), hidden);
    }

    /**
     * The load-balancing loss split by layer, for a backward that recomputes one layer at a time:
     * aux = sum over layers l of E * sum_e F[e] * S_l[e] / C, with F[e] = sum_j f[j, e] from
     * {@code routerLogits} of all layers (no gradient), S_l[e] layer l's sum of router
     * probabilities over real tokens and C = layers x real tokens. Returns F / C * E, (E), so that
     * a layer's share is {@link #layerShare}.
     */
    public static Tensor shareWeights(List<Tensor> routerLogits, Tensor attentionMask, int numExperts, int topK) {
        Tensor logits = torch.cat(new TensorVector(routerLogits.toArray(new Tensor[0])), 0);  // (L * tokens, E)
        Tensor probs = logits.softmax(-1, new ScalarTypeOptional(wide(logits.scalar_type())));
        Tensor chosen = probs.topk(topK, -1, true, true).get1();
        Tensor picks = torch.one_hot(chosen, numExperts).to(probs.scalar_type()).sum(new long[] {1}, false,
                new ScalarTypeOptional());                                                    // (L * tokens, E)
        Tensor real = attentionMask.reshape(-1).ne(new Scalar(0)).to(probs.scalar_type()).repeat(routerLogits.size());
        Tensor count = real.sum();
        return picks.mul(real.view(-1, 1)).sum(new long[] {0}, false, new ScalarTypeOptional())
                .div(count).div(count).mul(new Scalar((double) numExperts));               // (E)
    }

    /** One layer's share of the load-balancing loss: sum_e weights[e] * S_l[e], with its graph. */
    public static Tensor layerShare(Tensor layerLogits, Tensor attentionMask, Tensor weights) {
        Tensor probs = layerLogits.softmax(-1, new ScalarTypeOptional(wide(layerLogits.scalar_type())));
        Tensor real = attentionMask.reshape(-1).ne(new Scalar(0)).to(probs.scalar_type());
        return probs.mul(real.view(-1, 1)).sum(new long[] {0}, false, new ScalarTypeOptional()).mul(weights).sum();
    }

    /** float32 for the 16-bit types (HF's softmax dtype=torch.float); float64 stays float64 for the gradient check. */
    private static ScalarType wide(ScalarType t) {
        return t.value == ScalarType.BFloat16.value || t.value == ScalarType.Half.value ? ScalarType.Float : t;
    }

    /**
     * transformers' load_balancing_loss_func over the sparse layers' router logits with the
     * attention mask: E * sum_{j, e} f[j, e] * P[e], where f[j, e] is the fraction of real tokens
     * (over all layers) whose j-th choice is expert e and P[e] the mean router probability of e
     * over them. f carries no gradient (a top-k count); P does.
     *
     * @param routerLogits  per sparse layer, (batch * seq, experts)
     * @param attentionMask (batch, seq), non-zero for real tokens
     */
    public static Tensor loadBalancingLoss(List<Tensor> routerLogits, Tensor attentionMask, int numExperts, int topK) {
        Tensor logits = torch.cat(new TensorVector(routerLogits.toArray(new Tensor[0])), 0);  // (L * tokens, E)
        Tensor probs = logits.softmax(-1, new ScalarTypeOptional(wide(logits.scalar_type())));
        Tensor chosen = probs.topk(topK, -1, true, true).get1();                            // (L * tokens, k)
        Tensor picks = torch.one_hot(chosen, numExperts).to(probs.scalar_type());          // (L * tokens, k, E)
        Tensor real = attentionMask.reshape(-1).ne(new Scalar(0)).to(probs.scalar_type())
                .repeat(routerLogits.size());                                               // (L * tokens)
        Tensor count = real.sum();
        Tensor tokensPerExpert = picks.mul(real.view(-1, 1, 1)).sum(new long[] {0}, false, new ScalarTypeOptional())
                .div(count);                                                                // (k, E)
        Tensor probPerExpert = probs.mul(real.view(-1, 1)).sum(new long[] {0}, false, new ScalarTypeOptional())
                .div(count);                                                                // (E)
        return tokensPerExpert.mul(probPerExpert.unsqueeze(0)).sum().mul(new Scalar((double) numExperts));
    }
}
