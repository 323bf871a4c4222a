package dev.sparksft.train;

import dev.sparksft.UserError;
import dev.sparksft.config.FinetuningArguments;
import dev.sparksft.model.CausalLm;
import dev.sparksft.model.ModelConfig;
import dev.sparksft.model.ModelLayout;
import dev.sparksft.model.ModelWeights;
import java.util.ArrayList;
import java.util.LinkedHashMap;
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
 * {@code lora}, the adapter's matrices and the additional_target modules.
 */
public final class TrainableParameters {
    private TrainableParameters() {}

    public static Map<String, Tensor> select(CausalLm model, FinetuningArguments ft) {
        ModelConfig cfg = model.config();
        ModelWeights weights = model.weights();
        if (ft.lora()) {
            return lora(model);
        }
        List<String> patterns = new ArrayList<>();
        boolean all = ft.finetuningType().equals("full");
        if (!all) {
            int n = cfg.numLayers();
            int k = ft.freezeTrainableLayers();
            int from = k > 0 ? Math.max(0, n - k) : 0;
            int to = k > 0 ? n : Math.min(-k, n);
            Set<String> hidden = ModelLayout.hiddenModules(weights.tensors().keySet());
            Set<String> nonHidden = ModelLayout.nonHiddenModules(weights.tensors().keySet());
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
        Map<String, Tensor> trainable = new LinkedHashMap<>();
        for (Map.Entry<String, Tensor> e : weights.tensors().entrySet()) {
            String name = e.getKey();
            boolean trains = all || patterns.stream().anyMatch(name::contains);
            if (name.equals(ModelLayout.LM_HEAD) && cfg.tieWordEmbeddings()) {
                trains = false; // the head is the embedding; train it through embed_tokens
            }
            e.getValue().set_requires_grad(trains);
            if (trains) {
                trainable.put(name, e.getValue());
            }
        }
        if (trainable.isEmpty()) {
            throw new UserError("no parameter is trainable with finetuning_type " + ft.finetuningType()
                    + " and freeze_trainable_layers " + ft.freezeTrainableLayers());
        }
        return trainable;
    }

    /** LoRA: the adapter's A and B matrices plus the additional_target modules; the base stays frozen. */
    private static Map<String, Tensor> lora(CausalLm model) {
        if (model.lora() == null) {
            throw new IllegalStateException("finetuning_type: lora needs the model loaded with its adapter");
        }
        List<String> saved = model.lora().savedModules(model.weights());
        Map<String, Tensor> trainable = new LinkedHashMap<>();
        model.weights().tensors().forEach((name, t) -> t.set_requires_grad(saved.contains(name)));
        model.lora().tensors().forEach((name, t) -> {
            t.set_requires_grad(true);
            trainable.put(name, t);
        });
        saved.forEach(name -> trainable.put(name, model.weights().get(name)));
        return trainable;
    }
}
