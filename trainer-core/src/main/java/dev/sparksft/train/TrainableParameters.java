package dev.sparksft.train;

import dev.sparksft.UserError;
import dev.sparksft.config.FinetuningArguments;
import dev.sparksft.model.CausalLm;
import dev.sparksft.model.ModelConfig;
import dev.sparksft.model.ModelLayout;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.bytedeco.pytorch.Tensor;

/**
 * Chooses the parameters that train and marks them {@code requires_grad}: all of them for
 * {@code finetuning_type: full}; for {@code freeze}, LLaMA-Factory's rule: the last n decoder
 * layers ({@code freeze_trainable_layers: n}, or the first -n when negative), only the named
 * submodules of them ({@code freeze_trainable_modules}, "all" for every one), plus the
 * non-layer modules named in {@code freeze_extra_modules} (embed_tokens, norm, lm_head); for
 * {@code lora} and {@code oft}, the adapter's tensors and the additional_target modules.
 */
public final class TrainableParameters {
    private TrainableParameters() {}

    public static Map<String, Tensor> select(CausalLm model, FinetuningArguments ft) {
        if (ft.adapter()) {
            return adapter(model, ft);
        }
        Set<String> trains = baseWeights(model.weights().tensors().keySet(), model.config(), ft);
        Map<String, Tensor> trainable = new LinkedHashMap<>();
        for (Map.Entry<String, Tensor> e : model.weights().tensors().entrySet()) {
            boolean on = trains.contains(e.getKey());
            e.getValue().set_requires_grad(on);
            if (on) {
                trainable.put(e.getKey(), e.getValue());
            }
        }
        return trainable;
    }

    /**
     * The model weights (not LoRA matrices) that train, by name alone, so that loading can hold
     * every other weight in the run's compute dtype from the start: all of them for full, the
     * freeze rule's layers and modules for freeze, the additional_target modules for LoRA. A tied
     * LM head never trains itself (it trains through embed_tokens).
     */
    public static Set<String> baseWeights(Collection<String> names, ModelConfig cfg, FinetuningArguments ft) {
        if (ft.adapter()) {
            Set<String> saved = new LinkedHashSet<>();
            names.stream().filter(n -> ModelLayout.isSavedModule(n, ft.additionalTarget())).forEach(saved::add);
            return saved;
        }
        List<String> patterns = new ArrayList<>();
        boolean all = ft.finetuningType().equals("full");
        if (!all) {
            int n = cfg.numLayers();
            int k = ft.freezeTrainableLayers();
            int from = k > 0 ? Math.max(0, n - k) : 0;
            int to = k > 0 ? n : Math.min(-k, n);
            Set<String> hidden = ModelLayout.hiddenModules(names);
            Set<String> nonHidden = ModelLayout.nonHiddenModules(names);
            for (String module : ft.freezeTrainableModules()) {
                if (!module.equals("all") && !hidden.contains(module)) {
                    throw new UserError("freeze_trainable_modules: module '" + module
                            + "' is not found; choose from " + String.join(", ", hidden) + " or all");
                }
                for (int i = from; i < to; i++) {
                    patterns.add(ModelLayout.freezePattern(i, module));
                }
            }
            for (String module : ft.freezeExtraModules()) {
                if (!nonHidden.contains(module)) {
                    throw new UserError("freeze_extra_modules: module '" + module
                            + "' is not found; choose from " + String.join(", ", nonHidden));
                }
                patterns.add(module);
            }
        }
        Set<String> trains = new LinkedHashSet<>();
        for (String name : names) {
            boolean on = all || patterns.stream().anyMatch(name::contains);
            if (name.equals(ModelLayout.LM_HEAD) && cfg.tieWordEmbeddings()) {
                on = false;
            }
            if (on) {
                trains.add(name);
            }
        }
        if (trains.isEmpty()) {
            throw new UserError("no parameter is trainable with finetuning_type " + ft.finetuningType()
                    + " and freeze_trainable_layers " + ft.freezeTrainableLayers());
        }
        return trains;
    }

    /** LoRA and OFT: the adapter's tensors (A and B, or oft_R) plus the additional_target modules; the base stays frozen. */
    private static Map<String, Tensor> adapter(CausalLm model, FinetuningArguments ft) {
        if (model.adapter() == null) {
            throw new IllegalStateException("finetuning_type: " + ft.finetuningType() + " needs the model loaded with its adapter");
        }
        List<String> saved = model.adapter().savedModules(model.weights());
        Map<String, Tensor> trainable = new LinkedHashMap<>();
        model.weights().tensors().forEach((name, t) -> t.set_requires_grad(saved.contains(name)));
        model.adapter().tensors().forEach((name, t) -> {
            t.set_requires_grad(true);
            trainable.put(name, t);
        });
        saved.forEach(name -> trainable.put(name, model.weights().get(name)));
        return trainable;
    }
}
