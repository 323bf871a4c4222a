package dev.sparksft.config;

import com.fasterxml.jackson.annotation.JsonProperty;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * What to train, with which optimizer family and loss (LLaMA-Factory's FinetuningArguments: same
 * key names, defaults and mutual exclusions). Lists accept LLaMA-Factory's "a,b" strings.
 */
public record FinetuningArguments(
        @JsonProperty("stage") String stage,
        @JsonProperty("finetuning_type") String finetuningType,
        @JsonProperty("freeze_trainable_layers") Integer freezeTrainableLayers,
        @JsonProperty("freeze_trainable_modules") List<String> freezeTrainableModules,
        @JsonProperty("freeze_extra_modules") List<String> freezeExtraModules,
        @JsonProperty("use_llama_pro") Boolean useLlamaPro,
        // LoRA (PEFT layout) and LoRA+
        @JsonProperty("lora_rank") Integer loraRank,
        @JsonProperty("lora_alpha") Integer loraAlpha,
        @JsonProperty("lora_dropout") Double loraDropout,
        @JsonProperty("lora_target") List<String> loraTarget,
        @JsonProperty("additional_target") List<String> additionalTarget,
        @JsonProperty("use_rslora") Boolean useRslora,
        @JsonProperty("loraplus_lr_ratio") Double loraplusLrRatio,
        @JsonProperty("loraplus_lr_embedding") Double loraplusLrEmbedding,
        // PiSSA: LoRA initialised from the weight's principal singular vectors
        @JsonProperty("pissa_init") Boolean pissaInit,
        @JsonProperty("pissa_iter") Integer pissaIter,
        @JsonProperty("pissa_convert") Boolean pissaConvert,
        // GaLore
        @JsonProperty("use_galore") Boolean useGalore,
        @JsonProperty("galore_target") List<String> galoreTarget,
        @JsonProperty("galore_rank") Integer galoreRank,
        @JsonProperty("galore_update_interval") Integer galoreUpdateInterval,
        @JsonProperty("galore_scale") Double galoreScale,
        @JsonProperty("galore_proj_type") String galoreProjType,
        @JsonProperty("galore_layerwise") Boolean galoreLayerwise,
        // APOLLO
        @JsonProperty("use_apollo") Boolean useApollo,
        @JsonProperty("apollo_target") List<String> apolloTarget,
        @JsonProperty("apollo_rank") Integer apolloRank,
        @JsonProperty("apollo_update_interval") Integer apolloUpdateInterval,
        @JsonProperty("apollo_scale") Double apolloScale,
        @JsonProperty("apollo_proj") String apolloProj,
        @JsonProperty("apollo_proj_type") String apolloProjType,
        @JsonProperty("apollo_scale_type") String apolloScaleType,
        @JsonProperty("apollo_layerwise") Boolean apolloLayerwise,
        @JsonProperty("apollo_scale_front") Boolean apolloScaleFront,
        // BAdam
        @JsonProperty("use_badam") Boolean useBadam,
        @JsonProperty("badam_mode") String badamMode,
        @JsonProperty("badam_start_block") Integer badamStartBlock,
        @JsonProperty("badam_switch_mode") String badamSwitchMode,
        @JsonProperty("badam_switch_interval") Integer badamSwitchInterval,
        @JsonProperty("badam_update_ratio") Double badamUpdateRatio,
        @JsonProperty("badam_mask_mode") String badamMaskMode,
        @JsonProperty("badam_verbose") Integer badamVerbose,
        // OFT (PEFT layout); additional_target is shared with LoRA
        @JsonProperty("oft_rank") Integer oftRank,
        @JsonProperty("oft_block_size") Integer oftBlockSize,
        @JsonProperty("oft_target") List<String> oftTarget,
        @JsonProperty("module_dropout") Double moduleDropout,
        // Muon, Adam-mini
        @JsonProperty("use_muon") Boolean useMuon,
        @JsonProperty("use_adam_mini") Boolean useAdamMini,
        @JsonProperty("pure_bf16") Boolean pureBf16,
        // loss
        @JsonProperty("use_dft_loss") Boolean useDftLoss,
        @JsonProperty("use_eaft_loss") Boolean useEaftLoss,
        @JsonProperty("eaft_alpha") Double eaftAlpha,
        @JsonProperty("use_asft_loss") Boolean useAsftLoss,
        @JsonProperty("asft_alpha") Double asftAlpha,
        @JsonProperty("compute_accuracy") Boolean computeAccuracy,
        @JsonProperty("disable_shuffling") Boolean disableShuffling,
        @JsonProperty("plot_loss") Boolean plotLoss,
        // a vision-language model's parts (LLaMA-Factory's defaults: only the language model trains)
        @JsonProperty("freeze_vision_tower") Boolean freezeVisionTower,
        @JsonProperty("freeze_multi_modal_projector") Boolean freezeMultiModalProjector,
        @JsonProperty("freeze_language_model") Boolean freezeLanguageModel) {

    public FinetuningArguments {
        stage = stage == null ? "sft" : stage;
        finetuningType = finetuningType == null ? "lora" : finetuningType;
        freezeTrainableLayers = freezeTrainableLayers == null ? 2 : freezeTrainableLayers;
        freezeTrainableModules = freezeTrainableModules == null ? List.of("all") : List.copyOf(freezeTrainableModules);
        freezeExtraModules = freezeExtraModules == null ? List.of() : List.copyOf(freezeExtraModules);
        useLlamaPro = useLlamaPro != null && useLlamaPro;
        loraRank = loraRank == null ? 8 : loraRank;
        loraAlpha = loraAlpha == null ? loraRank * 2 : loraAlpha;          // LLaMA-Factory: lora_alpha or 2 x rank
        loraDropout = loraDropout == null ? 0.0 : loraDropout;
        loraTarget = loraTarget == null ? List.of("all") : List.copyOf(loraTarget);
        additionalTarget = additionalTarget == null ? List.of() : List.copyOf(additionalTarget);
        useRslora = useRslora != null && useRslora;
        loraplusLrEmbedding = loraplusLrEmbedding == null ? 1e-6 : loraplusLrEmbedding;
        pissaInit = pissaInit != null && pissaInit;
        pissaIter = pissaIter == null ? 16 : pissaIter;
        pissaConvert = pissaConvert != null && pissaConvert;
        useGalore = useGalore != null && useGalore;
        galoreTarget = galoreTarget == null ? List.of("all") : List.copyOf(galoreTarget);
        galoreRank = galoreRank == null ? 16 : galoreRank;
        galoreUpdateInterval = galoreUpdateInterval == null ? 200 : galoreUpdateInterval;
        galoreScale = galoreScale == null ? 2.0 : galoreScale;
        galoreProjType = galoreProjType == null ? "std" : galoreProjType;
        galoreLayerwise = galoreLayerwise != null && galoreLayerwise;
        useApollo = useApollo != null && useApollo;
        apolloTarget = apolloTarget == null ? List.of("all") : List.copyOf(apolloTarget);
        apolloRank = apolloRank == null ? 16 : apolloRank;
        apolloUpdateInterval = apolloUpdateInterval == null ? 200 : apolloUpdateInterval;
        apolloScale = apolloScale == null ? 32.0 : apolloScale;
        apolloProj = apolloProj == null ? "random" : apolloProj;
        apolloProjType = apolloProjType == null ? "std" : apolloProjType;
        apolloScaleType = apolloScaleType == null ? "channel" : apolloScaleType;
        apolloLayerwise = apolloLayerwise != null && apolloLayerwise;
        apolloScaleFront = apolloScaleFront != null && apolloScaleFront;
        useBadam = useBadam != null && useBadam;
        badamMode = badamMode == null ? "layer" : badamMode;
        badamSwitchMode = badamSwitchMode == null ? "ascending" : badamSwitchMode;
        badamSwitchInterval = badamSwitchInterval == null ? 50 : badamSwitchInterval;
        badamUpdateRatio = badamUpdateRatio == null ? 0.05 : badamUpdateRatio;
        badamMaskMode = badamMaskMode == null ? "adjacent" : badamMaskMode;
        badamVerbose = badamVerbose == null ? 0 : badamVerbose;
        oftRank = oftRank == null ? 0 : oftRank;
        oftBlockSize = oftBlockSize == null ? 32 : oftBlockSize;
        oftTarget = oftTarget == null ? List.of("all") : List.copyOf(oftTarget);
        moduleDropout = moduleDropout == null ? 0.0 : moduleDropout;
        useMuon = useMuon != null && useMuon;
        useAdamMini = useAdamMini != null && useAdamMini;
        pureBf16 = pureBf16 != null && pureBf16;
        useDftLoss = useDftLoss != null && useDftLoss;
        useEaftLoss = useEaftLoss != null && useEaftLoss;
        eaftAlpha = eaftAlpha == null ? 1.0 : eaftAlpha;
        useAsftLoss = useAsftLoss != null && useAsftLoss;
        asftAlpha = asftAlpha == null ? 0.1 : asftAlpha;
        computeAccuracy = computeAccuracy != null && computeAccuracy;
        disableShuffling = disableShuffling != null && disableShuffling;
        plotLoss = plotLoss != null && plotLoss;
        freezeVisionTower = freezeVisionTower == null || freezeVisionTower;
        freezeMultiModalProjector = freezeMultiModalProjector == null || freezeMultiModalProjector;
        freezeLanguageModel = freezeLanguageModel != null && freezeLanguageModel;

        List<String> p = new ArrayList<>();
        if (!stage.equals("sft")) {
            p.add("stage: spark-sft trains stage 'sft' only, got '" + stage + "'");
        }
        if (!List.of("full", "freeze", "lora", "oft").contains(finetuningType)) {
            p.add("finetuning_type must be full, freeze, lora or oft, got '" + finetuningType + "'");
        }
        if (freezeTrainableLayers == 0) {
            p.add("freeze_trainable_layers must not be 0 (n > 0: the last n layers, n < 0: the first -n)");
        }
        // LLaMA-Factory takes the first of dft, eaft, asft and would feed ASFT's reference logits to the
        // others' loss function: refuse the combination instead
        List<String> losses = new ArrayList<>();
        if (useDftLoss) losses.add("use_dft_loss");
        if (useEaftLoss) losses.add("use_eaft_loss");
        if (useAsftLoss) losses.add("use_asft_loss");
        if (losses.size() > 1) {
            p.add(String.join(" and ", losses) + " are exclusive (each replaces the loss): set one of them"
                    + (useAsftLoss ? " (use_asft_loss already contains DFT's weighting)" : ""));
        }
        if (!(eaftAlpha > 0)) {
            p.add("eaft_alpha must be > 0, got " + eaftAlpha);
        }
        if (!(asftAlpha >= 0)) {
            p.add("asft_alpha must be >= 0 (the weight of the KL divergence to the reference model; a negative one "
                    + "pushes the model away from it; LLaMA-Factory's examples use 0.05 and 0.1), got " + asftAlpha);
        }
        // LLaMA-Factory's exclusions, in its words where it has them
        boolean lora = finetuningType.equals("lora");
        boolean oft = finetuningType.equals("oft");
        if (lora && (useGalore || useApollo || useBadam)) {
            p.add("Cannot use LoRA with GaLore, APOLLO or BAdam together: set finetuning_type: full (or freeze), "
                    + "or turn off use_galore/use_apollo/use_badam");
        }
        if (oft && (useGalore || useApollo || useBadam)) {
            p.add("Cannot use OFT with GaLore, APOLLO or BAdam together: set finetuning_type: full (or freeze), "
                    + "or turn off use_galore/use_apollo/use_badam");
        }
        if ((useGalore ? 1 : 0) + (useApollo ? 1 : 0) + (useBadam ? 1 : 0) > 1) {
            p.add("Cannot use GaLore, APOLLO or BAdam together: set only one of use_galore, use_apollo, use_badam");
        }
        if (!lora && loraplusLrRatio != null) {
            p.add("loraplus_lr_ratio is only valid for LoRA training (finetuning_type: lora), got finetuning_type: "
                    + finetuningType);
        }
        if (useLlamaPro && finetuningType.equals("full")) {
            p.add("use_llama_pro is only valid for Freeze or LoRA training: it trains the expanded blocks only; set "
                    + "finetuning_type: freeze (or lora), got finetuning_type: full");
        }
        if (useLlamaPro && finetuningType.equals("oft")) {
            p.add("use_llama_pro with finetuning_type: oft is not implemented (OFT adapts every oft_target layer); use "
                    + "finetuning_type: freeze or lora with use_llama_pro, or turn use_llama_pro off");
        }
        if (useLlamaPro && freezeTrainableLayers < 0) {
            p.add("use_llama_pro: true needs freeze_trainable_layers > 0 (the number of expanded blocks, every "
                    + "num_layers / n-th layer trains), got " + freezeTrainableLayers);
        }
        if (!lora && pissaInit) {
            p.add("pissa_init is only valid for LoRA training (finetuning_type: lora), got finetuning_type: "
                    + finetuningType + "; set finetuning_type: lora or pissa_init: false");
        }
        if (useAsftLoss && pissaInit) {
            // ASFT's reference under LoRA is the base without the adapter, and PiSSA turns that base into the
            // residual W - scaling B A: the KL would pull towards the residual, not the starting model
            p.add("use_asft_loss with pissa_init is not supported: ASFT's reference is the base model without the "
                    + "adapter, which PiSSA replaces by its residual; set pissa_init: false (or use_asft_loss: false)");
        }
        if (!lora && pissaConvert) {
            p.add("pissa_convert converts a LoRA adapter and is only valid with finetuning_type: lora, got "
                    + "finetuning_type: " + finetuningType + "; set pissa_convert: false");
        }
        if (pissaIter < -1) {
            p.add("pissa_iter must be -1 (exact SVD) or >= 0 (the subspace iterations of the fast randomized SVD; "
                    + "16 is LLaMA-Factory's default), got " + pissaIter);
        }
        if (!lora && useRslora) {
            p.add("use_rslora is only valid for LoRA training (finetuning_type: lora), got finetuning_type: " + finetuningType);
        }
        // one custom optimizer at a time: LLaMA-Factory silently takes the first of its list; refuse instead
        List<String> optimizers = new ArrayList<>();
        if (useGalore) optimizers.add("use_galore");
        if (useApollo) optimizers.add("use_apollo");
        if (loraplusLrRatio != null) optimizers.add("loraplus_lr_ratio");
        if (useBadam) optimizers.add("use_badam");
        if (useAdamMini) optimizers.add("use_adam_mini");
        if (useMuon) optimizers.add("use_muon");
        if (optimizers.size() > 1) {
            p.add("one optimizer at a time: " + String.join(" and ", optimizers) + " both replace the optimizer; set one");
        }
        if (loraRank < 1) {
            p.add("lora_rank must be >= 1, got " + loraRank);
        }
        if (loraAlpha < 1) {
            p.add("lora_alpha must be >= 1, got " + loraAlpha);
        }
        if (loraDropout < 0 || loraDropout >= 1) {
            p.add("lora_dropout must be in [0, 1), got " + loraDropout);
        }
        if (loraplusLrRatio != null && !(loraplusLrRatio > 0)) {
            p.add("loraplus_lr_ratio must be > 0 (LoRA+ trains B at learning_rate x ratio; 16 is typical), got "
                    + loraplusLrRatio);
        }
        if (oft) {   // PEFT's OFTConfig: r blocks per layer or blocks of oft_block_size features, never both
            if (oftRank < 0 || oftBlockSize < 0) {
                p.add("oft_rank and oft_block_size must be >= 0, got oft_rank " + oftRank + ", oft_block_size "
                        + oftBlockSize);
            } else if (oftRank == 0 && oftBlockSize == 0) {
                p.add("oft_rank: 0 and oft_block_size: 0: OFT needs one of them; set oft_block_size (features per "
                        + "block, LLaMA-Factory's default 32) or oft_rank (blocks per layer)");
            } else if (oftRank != 0 && oftBlockSize != 0) {
                p.add("oft_rank: " + oftRank + " and oft_block_size: " + oftBlockSize + " are both set, but "
                        + "oft_rank x oft_block_size = in_features fixes one by the other; set oft_block_size: 0 to "
                        + "use oft_rank, or remove oft_rank");
            }
            if (moduleDropout < 0 || moduleDropout >= 1) {
                p.add("module_dropout must be in [0, 1), got " + moduleDropout);
            }
        }
        positive(p, "galore_rank", galoreRank);
        positive(p, "galore_update_interval", galoreUpdateInterval);
        positive(p, "apollo_rank", apolloRank);
        positive(p, "apollo_update_interval", apolloUpdateInterval);
        oneOf(p, "galore_proj_type", galoreProjType, Set.of("std", "reverse_std", "right", "left", "full"));
        oneOf(p, "apollo_proj", apolloProj, Set.of("svd", "random"));
        oneOf(p, "apollo_proj_type", apolloProjType, Set.of("std", "right", "left"));
        oneOf(p, "apollo_scale_type", apolloScaleType, Set.of("channel", "tensor"));
        oneOf(p, "badam_mode", badamMode, Set.of("layer", "ratio"));
        oneOf(p, "badam_switch_mode", badamSwitchMode, Set.of("ascending", "descending", "random", "fixed"));
        oneOf(p, "badam_mask_mode", badamMaskMode, Set.of("adjacent", "scatter"));
        if (useBadam && badamMode.equals("ratio") && !(badamUpdateRatio > 0 && badamUpdateRatio <= 1)) {
            p.add("badam_update_ratio must be in (0, 1] (the share of each tensor updated per step), got " + badamUpdateRatio);
        }
        if (useBadam && badamSwitchInterval == 0) {
            p.add("badam_switch_interval must be >= 1, or -1 to never switch blocks, got 0");
        }
        if (freezeVisionTower && freezeMultiModalProjector && freezeLanguageModel) {
            p.add("freeze_language_model: true with freeze_vision_tower and freeze_multi_modal_projector true (their "
                    + "defaults) leaves no part of the model to train; set freeze_language_model: false, or "
                    + "freeze_vision_tower or freeze_multi_modal_projector to false");
        }
        ConfigProblems.throwIfAny(p);
    }

    private static void positive(List<String> p, String key, int value) {
        if (value < 1) {
            p.add(key + " must be >= 1, got " + value);
        }
    }

    private static void oneOf(List<String> p, String key, String value, Set<String> allowed) {
        if (!allowed.contains(value)) {
            p.add(key + " must be one of " + String.join(", ", allowed.stream().sorted().toList()) + ", got '" + value + "'");
        }
    }

    public boolean lora() {
        return finetuningType.equals("lora");
    }

    /**
     * Layer-wise GaLore or APOLLO: each tensor stepped as soon as its gradient is complete. Like
     * LLaMA-Factory, galore_layerwise without use_galore (apollo_layerwise without use_apollo) does nothing.
     */
    public boolean layerwise() {
        return useGalore && galoreLayerwise || useApollo && apolloLayerwise;
    }

    /** The key that asks for {@link #layerwise}, for messages (null when it is off). */
    public String layerwiseKey() {
        return !layerwise() ? null : useGalore ? "galore_layerwise" : "apollo_layerwise";
    }

    public boolean oft() {
        return finetuningType.equals("oft");
    }

    /** LoRA or OFT: a PEFT adapter trains over the frozen base model. */
    public boolean adapter() {
        return lora() || oft();
    }
}
