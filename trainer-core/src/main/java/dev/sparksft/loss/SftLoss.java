package dev.sparksft.loss;

import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

/**
 * The training objective of a micro-batch as a SUM over its labelled tokens; the loop divides by
 * the number of labelled tokens of the whole optimizer step (docs/ARCHITECTURE.md invariant 2), so the
 * four variants share one normaliser:
 * <ul>
 *   <li>cross entropy: {@code sum_t ce_t}</li>
 *   <li>DFT ({@code use_dft_loss}): {@code sum_t ce_t * p_t}, p_t = detached exp(-ce_t)</li>
 *   <li>EAFT ({@code use_eaft_loss}): {@code sum_t ce_t * (H20_t / 3)^alpha}, H20_t = detached entropy
 *       of the softmax over the top-20 logits, divided by 3.0 as LLaMA-Factory does (about ln 20)</li>
 *   <li>ASFT ({@code use_asft_loss}): {@code sum_t ce_t * p_t + alpha * KL_t}, the DFT term plus the
 *       KL divergence at position t from the frozen reference model's next-token distribution q_t to
 *       the model's p_t over the whole vocabulary, {@code KL_t = sum_v q_t(v) (log q_t(v) - log p_t(v))}
 *       (LLaMA-Factory's {@code F.kl_div(log_p, q)}), at temperature 1, on the labelled positions
 *       only; the gradient flows through log p_t alone. LLaMA-Factory takes both terms' means per
 *       micro-batch; here both are sums over the step's N, so gradient accumulation and ranks give
 *       the loss of one big batch.</li>
 * </ul>
 */
public final class SftLoss {
    public enum Kind { CROSS_ENTROPY, DFT, EAFT, ASFT }

    static final int EAFT_TOP_K = 20;
    static final double EAFT_ENTROPY_SCALE = 3.0;

    private final Kind kind;
    private final double alpha;

    /** @param alpha eaft_alpha for EAFT, asft_alpha for ASFT; unused otherwise */
    public SftLoss(Kind kind, double alpha) {
        this.kind = kind;
        this.alpha = alpha;
    }

    /** Whether {@link #sum(Tensor, Tensor, Tensor)} needs the reference model's logits. */
    public boolean needsReference() {
        return kind == Kind.ASFT;
    }

    /**
     * @param logits (batch, seq, vocab)
     * @param labels (batch, seq), -100 where masked (unshifted)
     * @return scalar: the weighted sum of token losses (differentiable)
     */
    public Tensor sum(Tensor logits, Tensor labels) {
        return sum(logits, labels, null);
    }

    /**
     * {@link #sum(Tensor, Tensor)}, for ASFT against the reference model's logits of the same batch.
     *
     * @param refLogits (batch, seq, vocab) without a graph; null unless {@link #needsReference()}
     */
    public Tensor sum(Tensor logits, Tensor labels, Tensor refLogits) {
        if (needsReference() != (refLogits != null)) {
            throw new IllegalStateException(kind + " loss " + (refLogits == null ? "needs" : "takes no")
                    + " reference logits");
        }
        if (kind == Kind.ASFT) {
            return asft(logits, labels, refLogits);
        }
        Tensor ce = CausalLmLoss.tokenLosses(logits, labels);        // (batch, seq-1), 0 where masked
        if (kind == Kind.CROSS_ENTROPY) {
            return ce.sum();
        }
        Tensor weight;
        try (NoGradGuard noGrad = new NoGradGuard()) {
            if (kind == Kind.DFT) {
                weight = ce.detach().neg().exp();                    // p(label)
            } else {
                long seq = logits.size(1);
                Tensor shifted = CausalLmLoss.atLeastFloat32(logits.narrow(1, 0, seq - 1).detach());
                int k = (int) Math.min(EAFT_TOP_K, shifted.size(-1));
                Tensor top = torch.topk(shifted, k).get0();           // (batch, seq-1, k)
                Tensor logp = top.sub(torch.logsumexp(top, new long[] {-1}, true));
                Tensor entropy = logp.exp().mul(logp).sum(new long[] {-1}, false, new ScalarTypeOptional()).neg();
                weight = entropy.div(new Scalar(EAFT_ENTROPY_SCALE)).pow(new Scalar(alpha));
            }
        }
        return ce.mul(weight).sum();
    }

    /**
     * DFT's sum plus alpha x the KL sum, from one log-softmax of the model's logits: (batch, seq-1,
     * vocab) float32, the largest tensor of the loss, kept once for both terms. Where the reference's
     * logits equal the model's (the first step), log q - log p is exactly 0 and the sum is DFT's.
     */
    private Tensor asft(Tensor logits, Tensor labels, Tensor refLogits) {
        Tensor logp = CausalLmLoss.shiftedLogProbs(logits);         // (batch, seq-1, vocab)
        Tensor ce = CausalLmLoss.nll(logp, labels);                  // (batch, seq-1), 0 where masked
        Tensor p;
        Tensor logq;
        Tensor q;
        try (NoGradGuard noGrad = new NoGradGuard()) {
            p = ce.detach().neg().exp();                             // p(label), DFT's weight
            logq = CausalLmLoss.shiftedLogProbs(refLogits.detach()); // (batch, seq-1, vocab)
            q = logq.exp();
        }
        Tensor kl = q.mul(logq.sub(logp)).sum(new long[] {-1}, false, new ScalarTypeOptional());   // (batch, seq-1)
        long seq = labels.size(1);
        Tensor masked = labels.narrow(1, 1, seq - 1).eq(new Scalar(CausalLmLoss.IGNORE_INDEX));
        kl = kl.masked_fill(masked, new Scalar(0.0));
        return ce.mul(p).sum().add(kl.sum().mul(new Scalar(alpha)));
    }
}
