package dev.sparksft.config;

import com.fasterxml.jackson.annotation.JsonProperty;
import java.util.ArrayList;
import java.util.List;

/** What to train and with which loss (LLaMA-Factory's FinetuningArguments; same defaults). */
public record FinetuningArguments(
        @JsonProperty("stage") String stage,
        @JsonProperty("finetuning_type") String finetuningType,
        @JsonProperty("freeze_trainable_layers") Integer freezeTrainableLayers,
        @JsonProperty("freeze_trainable_modules") List<String> freezeTrainableModules,
        @JsonProperty("freeze_extra_modules") List<String> freezeExtraModules,
        @JsonProperty("use_dft_loss") Boolean useDftLoss,
        @JsonProperty("use_eaft_loss") Boolean useEaftLoss,
        @JsonProperty("eaft_alpha") Double eaftAlpha,
        @JsonProperty("compute_accuracy") Boolean computeAccuracy,
        @JsonProperty("disable_shuffling") Boolean disableShuffling,
        @JsonProperty("plot_loss") Boolean plotLoss) {

    public FinetuningArguments {
        stage = stage == null ? "sft" : stage;
        finetuningType = finetuningType == null ? "lora" : finetuningType;
        freezeTrainableLayers = freezeTrainableLayers == null ? 2 : freezeTrainableLayers;
        freezeTrainableModules = freezeTrainableModules == null ? List.of("all") : List.copyOf(freezeTrainableModules);
        freezeExtraModules = freezeExtraModules == null ? List.of() : List.copyOf(freezeExtraModules);
        useDftLoss = useDftLoss != null && useDftLoss;
        useEaftLoss = useEaftLoss != null && useEaftLoss;
        eaftAlpha = eaftAlpha == null ? 1.0 : eaftAlpha;
        computeAccuracy = computeAccuracy != null && computeAccuracy;
        disableShuffling = disableShuffling != null && disableShuffling;
        plotLoss = plotLoss != null && plotLoss;
        List<String> p = new ArrayList<>();
        if (!stage.equals("sft")) {
            p.add("stage: spark-sft trains stage 'sft' only, got '" + stage + "'");
        }
        if (!List.of("full", "freeze", "lora").contains(finetuningType)) {
            p.add("finetuning_type must be full, freeze or lora, got '" + finetuningType + "'");
        }
        if (freezeTrainableLayers == 0) {
            p.add("freeze_trainable_layers must not be 0 (n > 0: the last n layers, n < 0: the first -n)");
        }
        if (useDftLoss && useEaftLoss) {
            p.add("use_dft_loss and use_eaft_loss are exclusive: set one of them");
        }
        if (!(eaftAlpha > 0)) {
            p.add("eaft_alpha must be > 0, got " + eaftAlpha);
        }
        ConfigProblems.throwIfAny(p);
    }

    /** Training needs a method that exists: LoRA (LLaMA-Factory's default) comes in a later issue. */
    public void requireImplementedMethod() {
        if (finetuningType.equals("lora")) {
            throw new IllegalArgumentException("finetuning_type: lora (LLaMA-Factory's default) is not implemented yet; "
                    + "set finetuning_type: full or freeze");
        }
    }
}
