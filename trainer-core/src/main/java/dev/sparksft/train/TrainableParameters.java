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
 * layers ({@code freeze_trainable_layers: n}, or the first -n when negative; with
 * {@code use_llama_pro}, every num_layers / n-th layer), only the named
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
            List<Integer> layers = freezeLayers(cfg.numLayers(), ft.freezeTrainableLayers(), ft.useLlamaPro());
            Set<String> hidden = ModelLayout.hiddenModules(names);
            Set<String> nonHidden = ModelLayout.nonHiddenModules(names);
            for (String module : ft.freezeTrainableModules()) {
                if (!module.equals("all") && !hidden.contains(module)) {
                    throw new UserError("freeze_trainable_modules: module '" + module
                            + "' is not found; choose from " + String.join(", ", hidden) + " or all");
                }
                for (int i : layers) {
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
            ModelLayout.Part part = ModelLayout.partOf(name);
            boolean on = all || patterns.stream().anyMatch(name::contains)
                    // freeze tuning trains the projector too when it is not frozen (LLaMA-Factory's _setup_freeze_tuning)
                    || part == ModelLayout.Part.MULTI_MODAL_PROJECTOR && !ft.freezeMultiModalProjector();
            if (name.equals(ModelLayout.LM_HEAD) && cfg.tieWordEmbeddings()) {
                on = false;
            }
            if (frozenPart(part, ft)) {   // get_forbidden_modules: what the freeze_* keys keep frozen
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

    /**
     * Whether a vision-language model's {@code part} stays frozen in full and freeze tuning:
     * freeze_vision_tower (default true), freeze_multi_modal_projector (default true),
     * freeze_language_model (default false). A text model is all language model.
     */
    static boolean frozenPart(ModelLayout.Part part, FinetuningArguments ft) {
        return switch (part) {
            case VISION_TOWER -> ft.freezeVisionTower();
            case MULTI_MODAL_PROJECTOR -> ft.freezeMultiModalProjector();
            case LANGUAGE_MODEL -> ft.freezeLanguageModel();
        };
    }

    /**
     * The decoder layers freeze tuning trains: the last k ({@code freeze_trainable_layers: k > 0}) or
     * the first -k; with {@code use_llama_pro}, LLaMA Pro's expanded blocks instead: every
     * (num_layers / k)-th layer, the last of each group (8 layers, k = 2: layers 3 and 7), which
     * needs k to divide num_layers.
     */
    public static List<Integer> freezeLayers(int numLayers, int k, boolean llamaPro) {
        List<Integer> ids = new ArrayList<>();
        if (llamaPro) {
            if (numLayers % k != 0) {
                throw new UserError("use_llama_pro: the model's num_hidden_layers " + numLayers + " is not divisible "
                        + "by freeze_trainable_layers " + k + " (LLaMA Pro trains every num_layers / n-th layer, the "
                        + "expanded blocks); set freeze_trainable_layers to the number of expanded blocks, a divisor of "
                        + numLayers);
            }
            int stride = numLayers / k;
            for (int i = stride - 1; i < numLayers + stride - 1; i += stride) {   // range(stride - 1, n + stride - 1, stride)
                ids.add(i);
            }
            return ids;
        }
        int from = k > 0 ? Math.max(0, numLayers - k) : 0;
        int to = k > 0 ? numLayers : Math.min(-k, numLayers);
        for (int i = from; i < to; i++) {
            ids.add(i);
        }
        return ids;
    }

    /** LoRA and OFT: the adapter's tensors (A and B, or oft_R) plus the additional_target modules; the base stays frozen. */
    private static Map<String, Tensor> adapter(CausalLm model, FinetuningArguments ft) {
        if (model.adapter() == null) {
            throw new IllegalStateException("finetuning_type: " + ft.finetuningType() + " needs the model loaded with its adapter");
        }
        if (model.visionLanguage() != null && (!ft.freezeVisionTower() || !ft.freezeMultiModalProjector()
                || ft.freezeLanguageModel())) {
            // said, not ignored: the adapter sits on the decoder's linears only (lora_target all as LLaMA-Factory
            // reads it with the tower frozen), so these settings would change nothing
            throw new UserError("finetuning_type " + ft.finetuningType() + " on a vision-language model adapts the "
                    + "language model's linears only; freeze_vision_tower: " + ft.freezeVisionTower()
                    + ", freeze_multi_modal_projector: " + ft.freezeMultiModalProjector() + " and freeze_language_model: "
                    + ft.freezeLanguageModel() + " ask for more; keep the defaults (true, true, false) or train the "
                    + "tower or projector with finetuning_type: full or freeze");
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
