package dev.sparksft.optim;

import dev.sparksft.UserError;
import dev.sparksft.config.FinetuningArguments;
import dev.sparksft.config.TrainingArguments;
import dev.sparksft.model.ModelConfig;
import dev.sparksft.model.ModelLayout;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;
import org.bytedeco.pytorch.Tensor;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The seed's create_optimizer: LLaMA-Factory's create_custom_optimizer order (GaLore, APOLLO,
 * LoRA+, BAdam, Adam-mini, Muon), else {@code optim} (adamw_torch or sgd).
 */
public final class Optimizers {
    private static final Logger LOG = LoggerFactory.getLogger(Optimizers.class);

    private Optimizers() {}

    /** @param seed the run's seed: APOLLO's random projections and BAdam's random order derive from it */
    public static Optimizer create(Map<String, Tensor> trainable, ModelConfig cfg, TrainingArguments args,
                                   FinetuningArguments ft, long seed) {
        return create(trainable, trainable.keySet(), cfg, args, ft, seed);
    }

    /**
     * The optimizer over the {@code owned} share of {@code trainable} (ZeRO stage 1 and 2: its
     * state exists for those tensors only). Whole-set choices (GaLore/APOLLO targets, LoRA+ ratios,
     * Muon's matrices, BAdam's frozen embeddings) are made over all of {@code trainable}, so a
     * tensor is stepped the same way whichever rank owns it.
     */
    public static Optimizer create(Map<String, Tensor> trainable, Set<String> owned, ModelConfig cfg,
                                   TrainingArguments args, FinetuningArguments ft, long seed) {
        Map<String, Tensor> mine = new LinkedHashMap<>();
        trainable.forEach((n, p) -> {
            if (owned.contains(n)) {
                mine.put(n, p);
            }
        });
        ModelLayout layout = new ModelLayout(cfg);
        Set<String> noDecay = trainable.keySet().stream().filter(n -> !ModelLayout.decays(n)).collect(Collectors.toSet());
        double b1 = args.adamBeta1();
        double b2 = args.adamBeta2();
        double eps = args.adamEpsilon();
        double wd = args.weightDecay();
        if (ft.useGalore() || ft.useApollo()) {
            requireAdamW(args, ft.useGalore() ? "use_galore" : "use_apollo");
            boolean galore = ft.useGalore();
            Set<String> targets = linearTargets(trainable, galore ? ft.galoreTarget() : ft.apolloTarget(),
                    galore ? "galore_target" : "apollo_target");
            ProjectedAdamW.Settings s = galore
                    ? new ProjectedAdamW.Settings(ProjectedAdamW.Kind.GALORE, ft.galoreRank(), ft.galoreUpdateInterval(),
                            ft.galoreScale(), ft.galoreProjType(), false, false, false)
                    : new ProjectedAdamW.Settings(ProjectedAdamW.Kind.APOLLO, ft.apolloRank(), ft.apolloUpdateInterval(),
                            ft.apolloScale(), ft.apolloProjType(), ft.apolloProj().equals("random"),
                            ft.apolloScaleType().equals("channel"), ft.apolloScaleFront());
            LOG.info("using {} on {} weights: {}", galore ? "GaLore" : "APOLLO", targets.size(), s);
            ProjectedAdamW projected = new ProjectedAdamW(mine, targets, noDecay, s, b1, b2, eps, wd, seed,
                    List.copyOf(trainable.keySet()));
            if (!ft.layerwise()) {
                return projected;
            }
            if (args.maxGradNorm() > 0) {
                LOG.info("max_grad_norm {} has no effect with {}: each tensor is stepped as soon as its gradient is "
                        + "complete, before a clip over all gradients could run (LLaMA-Factory clips nothing either); "
                        + "grad_norm is logged unclipped", args.maxGradNorm(), ft.layerwiseKey());
            }
            return new LayerwiseOptimizer(projected, mine);
        }
        if (ft.loraplusLrRatio() != null) {
            requireAdamW(args, "loraplus_lr_ratio");
            Map<String, Double> scale = new LinkedHashMap<>();
            trainable.forEach((name, p) -> {
                if (name.contains("lora_embedding_B")) {
                    scale.put(name, ft.loraplusLrEmbedding() / args.learningRate());
                } else if (name.contains("lora_B") || p.dim() == 1) {
                    scale.put(name, ft.loraplusLrRatio());
                }
            });
            LOG.info("using LoRA+ with lr ratio {} on {} tensors", ft.loraplusLrRatio(), scale.size());
            return new AdamW(mine, noDecay, scale, b1, b2, eps, wd);
        }
        if (ft.useBadam() && ft.badamMode().equals("ratio")) {
            requireAdamW(args, "use_badam");
            LOG.info("using BAdam with ratio-based update, update ratio {}, mask mode {}", ft.badamUpdateRatio(),
                    ft.badamMaskMode());
            return new SparseBlockAdam(trainable, owned, ft.badamUpdateRatio(), ft.badamMaskMode(), seed, b1, b2, eps);
        }
        if (ft.useBadam()) {
            requireAdamW(args, "use_badam");
            if (mine.size() != trainable.size()) {
                throw new IllegalStateException("BAdam's layer mode switches blocks over all parameters; it cannot step a share");
            }
            BlockAdam badam = new BlockAdam(trainable, noDecay, ft.badamSwitchMode(), ft.badamStartBlock(),
                    ft.badamSwitchInterval(), b1, b2, eps, wd, seed);
            LOG.info("using BAdam over {} layer blocks, switch mode {}, every {} steps, starting at block {}",
                    badam.numBlocks(), ft.badamSwitchMode(), ft.badamSwitchInterval(), badam.activeBlock());
            return badam;
        }
        if (ft.useAdamMini()) {
            LOG.info("using Adam-mini");
            return new AdamMini(mine, layout.attentionHeadNumel(), b1, b2, eps, wd);
        }
        if (ft.useMuon()) {
            Set<String> muon = new LinkedHashSet<>();
            trainable.forEach((name, p) -> {
                if (ModelLayout.isHiddenMatrix(name, p.dim())) {
                    muon.add(name);
                }
            });
            LOG.info("using Muon with {} Muon params and {} AdamW params", muon.size(), trainable.size() - muon.size());
            return new Muon(mine, muon, b1, b2, eps, wd);
        }
        return args.optim().equals("sgd") ? new Sgd(mine, noDecay, wd)
                : new AdamW(mine, noDecay, b1, b2, eps, wd);
    }

    private static void requireAdamW(TrainingArguments args, String key) {
        if (!args.optim().equals("adamw_torch")) {
            throw new UserError(key + " builds on optim: adamw_torch, got optim: " + args.optim());
        }
    }

    /** The trainable 2-D weights of linear modules whose name contains a target ("all": every layer linear). */
    static Set<String> linearTargets(Map<String, Tensor> trainable, List<String> targets, String key) {
        Set<String> found = new LinkedHashSet<>();
        Set<String> modules = new TreeSet<>();
        for (Map.Entry<String, Tensor> e : trainable.entrySet()) {
            String name = e.getKey();
            String module = ModelLayout.linearModule(name);
            if (e.getValue().dim() != 2 || module == null) {
                continue;
            }
            String leaf = ModelLayout.leaf(module);
            modules.add(leaf);
            boolean all = targets.size() == 1 && targets.get(0).equals("all");
            if (all ? ModelLayout.LAYER_LINEARS.contains(leaf) : targets.stream().anyMatch(module::contains)) {
                found.add(name);
            }
        }
        if (found.isEmpty()) {
            throw new UserError(key + ": " + targets + " matches no trainable linear weight; choose from "
                    + String.join(", ", modules) + " or all");
        }
        return found;
    }
}
