package dev.sparksft.optim;

import dev.sparksft.UserError;
import dev.sparksft.model.ModelLayout;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * BAdam's layer-wise BlockOptimizer (Ledzy/BAdam, as LLaMA-Factory's {@code use_badam} with
 * {@code badam_mode: layer} builds it): one decoder layer ({@code model.layers.i.}) trains at a
 * time with AdamW; every other parameter is frozen and has no gradient, and the AdamW state
 * exists only for the active block. After the optimizer step numbered s (1-based), the block
 * switches when (s + 1) is a multiple of {@code badam_switch_interval}, exactly BAdam's rule (so
 * the first block trains interval - 1 steps, later ones interval steps), and the new block starts
 * with fresh AdamW state. Embeddings, the final norm and the LM head never train, as in BAdam
 * without include_embedding / include_lm_head. This is the seed's BAdamCallback work as well:
 * the switch happens inside {@link #step}, so there is no callback to register.
 */
public final class BlockAdam implements Optimizer {
    private static final Logger LOG = LoggerFactory.getLogger(BlockAdam.class);

    private final Map<String, Tensor> params;
    private final List<Integer> blocks = new ArrayList<>();    // decoder layer indices, in model order
    private final Set<String> noDecay;
    private final String switchMode;
    private final int interval;
    private final double beta1;
    private final double beta2;
    private final double eps;
    private final double weightDecay;
    private final Tensor block = torch.zeros(new long[0], new org.bytedeco.pytorch.TensorOptions(torch.ScalarType.Long));
    /** random mode: the blocks still to visit this round, used from the end; -1 for none. */
    private final Tensor order;
    /** random mode: how many rounds were drawn; round k's order derives from (seed, k), so a resume continues it. */
    private final Tensor round = torch.zeros(new long[0], new org.bytedeco.pytorch.TensorOptions(torch.ScalarType.Long));
    private final long seed;
    private AdamW active;
    /** block, order and round, and the steps of all blocks together. */
    private final OptimizerState state = new OptimizerState();

    /**
     * @param startBlock badam_start_block, or null for the mode's default (0, or the last for descending)
     * @param interval   badam_switch_interval; -1 never switches
     */
    public BlockAdam(Map<String, Tensor> params, Set<String> noDecay, String switchMode, Integer startBlock, int interval,
                     double beta1, double beta2, double eps, double weightDecay, long seed) {
        this.params = new LinkedHashMap<>(params);
        this.noDecay = Set.copyOf(noDecay);
        this.switchMode = switchMode;
        this.interval = interval;
        this.beta1 = beta1;
        this.beta2 = beta2;
        this.eps = eps;
        this.weightDecay = weightDecay;
        for (String name : params.keySet()) {
            int layer = ModelLayout.layerIndex(name);
            if (layer >= 0 && !blocks.contains(layer)) {
                blocks.add(layer);
            }
        }
        if (blocks.isEmpty()) {
            throw new UserError("use_badam: no trainable decoder layer (model.layers.N.) to update block "
                    + "by block; BAdam needs finetuning_type: full");
        }
        if (startBlock != null && (startBlock < 0 || startBlock >= blocks.size())) {
            throw new UserError("badam_start_block must be in [0, " + blocks.size() + ") for this model's "
                    + blocks.size() + " layers, got " + startBlock);
        }
        this.seed = seed;
        this.order = torch.full(new long[] {blocks.size()}, new org.bytedeco.pytorch.Scalar(-1L),
                new org.bytedeco.pytorch.TensorOptions(torch.ScalarType.Long));
        state.add("badam.block", block);
        state.add("badam.order", order);
        state.add("badam.round", round);
        long first;
        if (startBlock != null) {
            first = startBlock;
        } else if (switchMode.equals("descending")) {
            first = blocks.size() - 1;
        } else if (switchMode.equals("random")) {
            newRandomRound();
            first = popRandom();
        } else {
            first = 0;
        }
        activate((int) first);
    }

    /** The index of the decoder layer training now. */
    public int activeBlock() {
        return (int) block.item_long();
    }

    public int numBlocks() {
        return blocks.size();
    }

    @Override
    public void step(double lr) {
        active.step(lr);
        long t = state.advance();
        if (interval > 0 && (t + 1) % interval == 0) {
            int next = switch (switchMode) {
                case "ascending" -> (activeBlock() + 1) % blocks.size();
                case "descending" -> Math.floorMod(activeBlock() - 1, blocks.size());
                case "random" -> {
                    if (order.ge(new org.bytedeco.pytorch.Scalar(0)).sum().item_long() == 0) {
                        newRandomRound();
                    }
                    yield popRandom();
                }
                default -> activeBlock();   // fixed
            };
            activate(next);
        }
    }

    /** Makes block {@code index} the only trainable one, with fresh AdamW state. */
    private void activate(int index) {
        block.fill_(new org.bytedeco.pytorch.Scalar((long) index));
        int layer = blocks.get(index);
        Map<String, Tensor> trainable = new LinkedHashMap<>();
        params.forEach((name, p) -> {
            boolean on = ModelLayout.layerIndex(name) == layer;
            p.set_requires_grad(on);
            if (on) {
                trainable.put(name, p);
            } else if (p.grad().defined()) {
                p.mutable_grad().put(new Tensor());   // param.grad = None: no memory for frozen blocks
            }
        });
        if (active != null) {
            active.state().values().forEach(Tensor::close);   // the old block's moments: freed now, not at GC
        }
        active = new AdamW(trainable, noDecay, beta1, beta2, eps, weightDecay);
        // a switch happens inside the trainer's per-step PointerScope, which would free the new state with the step
        active.state().values().forEach(OptimizerState::outliveScope);
        LOG.debug("BAdam: training block {} ({}), {} tensors", index, ModelLayout.layerPrefix(layer), trainable.size());
    }

    private void newRandomRound() {
        SplittableRandom random = new SplittableRandom(seed * 0x9E3779B97F4A7C15L + round.item_long());
        round.add_(new org.bytedeco.pytorch.Scalar(1L));
        int[] perm = dev.sparksft.runtime.Permutation.shuffled(blocks.size(), random);
        for (int i = 0; i < perm.length; i++) {
            order.narrow(0, i, 1).fill_(new org.bytedeco.pytorch.Scalar((long) perm[i]));
        }
    }

    private int popRandom() {
        for (int i = blocks.size() - 1; i >= 0; i--) {
            long b = order.narrow(0, i, 1).item_long();
            if (b >= 0) {
                order.narrow(0, i, 1).fill_(new org.bytedeco.pytorch.Scalar(-1L));
                return (int) b;
            }
        }
        throw new IllegalStateException("no block left in this round");
    }

    @Override
    public long numSteps() {
        return state.numSteps();
    }

    @Override
    public Map<String, Tensor> state() {
        Map<String, Tensor> s = new LinkedHashMap<>(active.state());
        s.putAll(state.tensors());
        // the active block's AdamW counts its own steps (bias correction restarts at a switch)
        s.put("badam.block_steps", torch.full(new long[0], new org.bytedeco.pytorch.Scalar(active.numSteps()),
                new org.bytedeco.pytorch.TensorOptions(torch.ScalarType.Long)));
        return s;
    }

    @Override
    public void load(Map<String, Tensor> saved, long numSteps) {
        if (saved.get("badam.block") == null) {
            throw new UserError("the checkpoint's optimizer state has no BAdam block (was use_badam "
                    + "turned on since the checkpoint?)");
        }
        Map<String, Tensor> own = new LinkedHashMap<>(saved);
        own.keySet().retainAll(state.tensors().keySet());
        state.load(own, numSteps, "BAdam");
        activate((int) block.item_long());
        Tensor blockSteps = saved.get("badam.block_steps");
        active.load(without(saved, "badam."), blockSteps == null ? 0 : blockSteps.item_long());
    }

    private static Map<String, Tensor> without(Map<String, Tensor> state, String prefix) {
        Map<String, Tensor> rest = new LinkedHashMap<>(state);
        rest.keySet().removeIf(k -> k.startsWith(prefix));
        return rest;
    }
}
