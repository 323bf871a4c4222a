package dev.sparksft.loss;

import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

/**
 * The training objective of a micro-batch as a SUM over its labelled tokens; the loop divides by
 * the number of labelled tokens of the whole optimizer step (docs/ARCHITECTURE.md invariant 2), so the
 * three variants share one normaliser:
 * <ul>
 *   <li>cross entropy: {@code sum_t ce_t}</li>
 *   <li>DFT ({@code use_dft_loss}): {@code sum_t ce_t * p_t}, p_t = detached exp(-ce_t)</li>
 *   <li>EAFT ({@code use_eaft_loss}): {@code sum_t ce_t * (H20_t / 3)^alpha}, H20_t = detached entropy
 *       of the softmax over the top-20 logits, divided by 3.0 as LLaMA-Factory does (about ln 20)</li>
 * </ul>
 */
public final class SftLoss {
    public enum Kind { CROSS_ENTROPY, DFT, EAFT }

    static final int EAFT_TOP_K = 20;
    static final double EAFT_ENTROPY_SCALE = 3.0;

    private final Kind kind;
    private final double eaftAlpha;

    public SftLoss(Kind kind, double eaftAlpha) {
        this.kind = kind;
        this.eaftAlpha = eaftAlpha;
    }

    /**
     * @param logits (batch, seq, vocab)
     * @param labels (batch, seq), -100 where masked (unshifted)
     * @return scalar: the weighted sum of token losses (differentiable)
     */
    public Tensor sum(Tensor logits, Tensor labels) {
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
                Tensor entropy = logp.exp().mul(logp).sum(new long[] {-1}, false, new org.bytedeco.pytorch.ScalarTypeOptional()).neg();
                weight = entropy.div(new Scalar(EAFT_ENTROPY_SCALE)).pow(new Scalar(eaftAlpha));
            }
        }
        return ce.mul(weight).sum();
    }
}
