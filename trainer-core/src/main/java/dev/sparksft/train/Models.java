package dev.sparksft.train;

import dev.sparksft.UserError;
import dev.sparksft.config.FinetuningArguments;
import dev.sparksft.config.SftConfig;
import dev.sparksft.model.Dtype;
import dev.sparksft.model.FourBitQuantization;
import dev.sparksft.model.FourBitType;
import dev.sparksft.model.QuantizedWeight;
import dev.sparksft.model.CausalLm;
import dev.sparksft.model.Adapter;
import dev.sparksft.model.LoraAdapter;
import dev.sparksft.model.OftAdapter;
import dev.sparksft.model.ModelConfig;
import dev.sparksft.model.ModelLayout;
import dev.sparksft.model.Pissa;
import dev.sparksft.model.VocabResize;
import dev.sparksft.tokenizer.NewTokens;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.bytedeco.pytorch.Device;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Which weights a run starts from: a full model, or a base model plus a LoRA (PEFT's or PiSSA's
 * initialisation) or OFT adapter (new, from adapter_name_or_path, or from the checkpoint being
 * resumed), in float32 or, with {@code pure_bf16}, in bfloat16.
 */
public final class Models {
    private static final Logger LOG = LoggerFactory.getLogger(Models.class);

    private Models() {}

    /** {@link #forTraining(SftConfig, Path, Path, Path, NewTokens, Device)} for a tokenizer nothing was added to. */
    public static CausalLm forTraining(SftConfig config, Path baseDir, Path resumeDir, Path adapterDir, int vocabSize,
                                         Device device) throws IOException {
        return forTraining(config, baseDir, resumeDir, adapterDir, NewTokens.none(vocabSize), device);
    }

    /**
     * The model to train. The embedding and the LM head are resized for {@code tokens} as resize_vocab
     * does ({@link VocabResize}) when the weights come from model_name_or_path; a full checkpoint being
     * resumed has them resized already. With an adapter and no additional_target, a resized vocabulary
     * makes embed_tokens and lm_head trained in full and saved with the adapter (LLaMA-Factory: "Vocab
     * has been resized, add embed_tokens,lm_head to trainable params"); a tied head trains through
     * embed_tokens.
     *
     * @param baseDir   model_name_or_path, local
     * @param resumeDir the checkpoint to resume from, or null
     * @param adapterDir adapter_name_or_path, local, or null
     * @param tokens    what the run added to the tokenizer
     */
    public static CausalLm forTraining(SftConfig config, Path baseDir, Path resumeDir, Path adapterDir, NewTokens tokens,
                                         Device device) throws IOException {
        requireFp8Support(config, device.type().value == org.bytedeco.pytorch.global.torch.DeviceType.CUDA.value);
        long seed = config.training().seed();
        if (!config.finetuning().adapter()) {
            if (adapterDir != null) {
                throw new UserError("adapter_name_or_path is set but finetuning_type is "
                        + config.finetuning().finetuningType() + "; merge the adapter first (scripts/sft export) or "
                        + "set finetuning_type: lora (or oft, for an OFT adapter)");
            }
            return resumeDir != null ? CausalLm.load(resumeDir, NewTokens.none(tokens.vocabSize()), seed, device,
                    heldDtype(config), null) : CausalLm.load(baseDir, tokens, seed, device, heldDtype(config), null);
        }
        ModelConfig baseConfig = ModelConfig.load(baseDir);
        List<String> additional = config.finetuning().additionalTarget();
        if (VocabResize.applies(baseConfig, tokens) && additional.isEmpty()) {
            additional = baseConfig.tieWordEmbeddings() ? List.of("embed_tokens") : List.of("embed_tokens", "lm_head");
            LOG.warn("Vocab has been resized, add {} to trainable params.", String.join(",", additional));
        }
        FourBitQuantization quantization = quantization(config);
        CausalLm base = CausalLm.load(baseDir, tokens, seed, device, trainedInFull(heldDtype(config), additional, config),
                quantization);
        if (quantization != null) {
            LOG.info("quantization_bit: 4: {} linear weights held in {}{} ({} bytes)", base.weights().quantizedWeights().size(),
                    quantization.type().key(), quantization.doubleQuant() ? " with double quantization" : "",
                    String.format("%,d", base.weights().quantizedWeights().values().stream()
                            .mapToLong(QuantizedWeight::heldBytes).sum()));
        }
        Path from = resumeDir != null ? resumeDir : adapterDir;
        if (config.finetuning().oft()) {
            return base.withAdapter(oft(config, base, from, additional));
        }
        FinetuningArguments ft = config.finetuning();
        LoraAdapter adapter;
        if (resumeDir != null && !ft.pissaConvert()) {
            adapter = LoraAdapter.load(resumeDir, base.weights(), seed);   // a PiSSA checkpoint recomputes its residual
        } else {
            // the adapter as training starts; pissa_convert keeps it, and a resume then takes the checkpoint's values
            adapter = adapterDir != null ? LoraAdapter.load(adapterDir, base.weights(), seed) : newAdapter(ft, base, seed, additional);
            if (ft.pissaConvert()) {
                adapter.keepInitial();
            }
            if (resumeDir != null) {
                adapter.resumeFrom(resumeDir, base.weights());
            }
        }
        if (ft.pissaInit() && adapterDir != null && resumeDir == null) {
            LOG.warn("pissa_init has no effect on adapter_name_or_path {}: training continues that adapter", adapterDir);
        }
        LOG.info("LoRA: rank {}, scaling {}, {} adapted weights{}{}", adapter.rank(), adapter.scaling(),
                adapter.tensors().size() / 2, adapter.init() == null ? "" : ", init_lora_weights " + adapter.init(),
                from != null ? ", from " + from : "");
        return base.withAdapter(adapter);
    }

    /**
     * {@code heldAs} with the modules that resize_vocab made trainable kept in float32 under bf16
     * autocast (a trained weight keeps a float32 master copy, as additional_target's would).
     */
    private static java.util.function.BiFunction<String, ModelConfig, Dtype> trainedInFull(
            java.util.function.BiFunction<String, ModelConfig, Dtype> heldAs, List<String> modules, SftConfig config) {
        if (heldAs == null || config.finetuning().pureBf16()) {
            return heldAs;
        }
        return (name, cfg) -> ModelLayout.isSavedModule(name, modules) ? Dtype.F32 : heldAs.apply(name, cfg);
    }

    /**
     * How quantization_bit holds the base's linear weights, or null without it (the arguments allow
     * 4-bit bnb alone).
     */
    public static FourBitQuantization quantization(SftConfig config) {
        var m = config.model();
        return m.quantized() ? new FourBitQuantization(FourBitType.valueOf(m.quantizationType().toUpperCase(
                java.util.Locale.ROOT)), m.doubleQuantization()) : null;
    }

    /** A new OFT adapter of the oft_* keys (with {@code additional} trained in full), or the one saved in {@code from}. */
    private static OftAdapter oft(SftConfig config, CausalLm base, Path from, List<String> additional) throws IOException {
        var ft = config.finetuning();
        OftAdapter adapter = from != null ? loaded(OftAdapter.class, from, base, config)
                : OftAdapter.create(base.weights(), new OftAdapter.Settings(ft.oftRank(), ft.oftBlockSize(),
                        ft.moduleDropout(), ft.oftTarget(), additional));
        LOG.info("OFT: {} adapted weights, {} trainable parameters{}", adapter.tensors().size(),
                adapter.tensors().values().stream().mapToLong(t -> t.numel()).sum(), from != null ? ", from " + from : "");
        return adapter;
    }

    /** The adapter saved in {@code from}, refused when it is not of the kind finetuning_type trains. */
    private static <A extends Adapter> A loaded(Class<A> kind, Path from, CausalLm base, SftConfig config)
            throws IOException {
        Adapter a = Adapter.load(from, base.weights(), config.training().seed());
        if (!kind.isInstance(a)) {
            throw new UserError(from + " holds a " + (a instanceof OftAdapter ? "OFT" : "LoRA") + " adapter but "
                    + "finetuning_type is " + config.finetuning().finetuningType() + "; set finetuning_type: "
                    + (a instanceof OftAdapter ? "oft" : "lora") + " to train it further");
        }
        return kind.cast(a);
    }

    /**
     * A new adapter: PEFT's default initialisation, or PiSSA's (the base becomes the residual);
     * {@code additional}: additional_target, or what a resized vocabulary made trainable.
     */
    private static LoraAdapter newAdapter(FinetuningArguments ft, CausalLm base, long seed, List<String> additional) {
        LoraAdapter adapter = LoraAdapter.create(base.weights(), new LoraAdapter.Settings(ft.loraRank(), ft.loraAlpha(),
                ft.loraDropout(), ft.useRslora(), loraTargets(ft, base), additional), seed);
        if (ft.pissaInit()) {
            long start = System.nanoTime();
            Pissa.initialise(base.weights(), adapter, ft.pissaIter(), seed);
            LOG.info("PiSSA: {} weights initialised from their top-{} singular vectors ({}) in {} s",
                    adapter.tensors().size() / 2, ft.loraRank(), ft.pissaIter() < 0 ? "exact SVD"
                            : ft.pissaIter() + " subspace iterations", String.format("%.1f", (System.nanoTime() - start) / 1e9));
        }
        return adapter;
    }

    /**
     * lora_target, restricted with use_llama_pro to the expanded blocks (LLaMA-Factory's
     * find_expanded_modules): the targeted linear modules of every num_layers / n-th layer, by full name.
     */
    static List<String> loraTargets(FinetuningArguments ft, CausalLm base) {
        if (!ft.useLlamaPro()) {
            return ft.loraTarget();
        }
        List<Integer> layers = TrainableParameters.freezeLayers(base.config().numLayers(), ft.freezeTrainableLayers(), true);
        List<String> leaves = ft.loraTarget().equals(List.of("all")) ? ModelLayout.LAYER_LINEARS : ft.loraTarget();
        List<String> modules = new ArrayList<>();
        for (String name : base.weights().tensors().keySet()) {
            String module = ModelLayout.layerLinearModule(name);
            if (module != null && layers.contains(ModelLayout.layerIndex(name))
                    && leaves.stream().anyMatch(t -> module.equals(t) || module.endsWith("." + t))) {
                modules.add(module);
            }
        }
        if (modules.isEmpty()) {
            throw new UserError("lora_target: " + ft.loraTarget() + " matches no linear module of the expanded layers "
                    + layers + " (use_llama_pro); choose from " + String.join(", ", new ModelLayout(base.config()).layerLinears())
                    + " or all");
        }
        return modules;
    }

    /** {@link #forInference(Path, Path, Path, NewTokens, Device, long)} for a tokenizer nothing was added to. */
    public static CausalLm forInference(Path baseDir, Path dir, Path adapterDir, int vocabSize, Device device, long seed)
            throws IOException {
        return forInference(baseDir, dir, adapterDir, NewTokens.none(vocabSize), device, seed);
    }

    /**
     * The model to generate with: {@code dir} itself, or base + the adapter {@code dir} holds (or
     * {@code adapterDir}); {@code seed} keys a PiSSA adapter's randomized SVD, as in its training run,
     * and the new rows of model_name_or_path, resized for {@code tokens} as for training (an adapter
     * trained over a resized vocabulary then brings its own embed_tokens and lm_head).
     */
    public static CausalLm forInference(Path baseDir, Path dir, Path adapterDir, NewTokens tokens, Device device, long seed)
            throws IOException {
        return forInference(baseDir, dir, adapterDir, tokens, device, seed, null);
    }

    /**
     * {@link #forInference(Path, Path, Path, NewTokens, Device, long)} with the linear weights held in 4 bits
     * ({@code quantization} null: as stored), as LLaMA-Factory evaluates and predicts with quantization_bit.
     */
    public static CausalLm forInference(Path baseDir, Path dir, Path adapterDir, NewTokens tokens, Device device, long seed,
                                        FourBitQuantization quantization) throws IOException {
        if (Adapter.isAdapterDir(dir)) {
            adapterDir = dir;
            dir = baseDir;
        }
        // a trained full model (not model_name_or_path) has its rows resized and trained already
        CausalLm model = CausalLm.load(dir, dir.equals(baseDir) ? tokens : NewTokens.none(tokens.vocabSize()), seed,
                device, null, quantization);
        return adapterDir == null ? model : model.withAdapter(Adapter.load(adapterDir, model.weights(), seed));
    }

    /**
     * fp8: scaled FP8 matmuls need a CUDA GPU of compute capability 8.9 or newer (Ada, Hopper).
     * On a CPU that is a configuration error; on CUDA this build has no verified FP8 path yet,
     * and says so rather than training in bf16 while the config claims FP8.
     */
    public static void requireFp8Support(SftConfig config, boolean cuda) {
        if (!config.training().fp8()) {
            return;
        }
        if (!cuda) {
            throw new UserError("fp8: true needs a CUDA GPU with compute capability >= 8.9 (Ada or Hopper) "
                    + "for scaled FP8 matmuls, but this rank's device is cpu; set fp8: false (bf16: true is the fastest "
                    + "CPU option) or run with device: cuda on such GPUs");
        }
        throw new UserError("fp8: true on cuda: FP8 linear layers are not "
                + "available in this build of spark-sft (they have not been verified on a GPU); use bf16: true");
    }

    /**
     * The dtype each weight is held in during training, decided from its name before it is read:
     * with pure_bf16 every weight (and so its gradient and optimizer state) is bfloat16; with bf16
     * autocast the weights that train keep a float32 master copy and the frozen ones (a LoRA base,
     * freeze's frozen layers) are bfloat16, the dtype their matmuls run in anyway (LLaMA-Factory
     * loads the model in the compute dtype and casts only the trainable parameters to float32);
     * otherwise float32.
     */
    public static java.util.function.BiFunction<String, ModelConfig, Dtype> heldDtype(SftConfig config) {
        if (config.finetuning().pureBf16()) {
            return (name, cfg) -> Dtype.BF16;
        }
        if (!config.training().bf16()) {
            return null;
        }
        java.util.Map<ModelConfig, java.util.Set<String>> trains = new java.util.IdentityHashMap<>();   // one config per load
        return (name, cfg) -> trains.computeIfAbsent(cfg, c -> TrainableParameters.baseWeights(
                new ModelLayout(c).expectedShapes().keySet(), c, config.finetuning())).contains(name)
                ? Dtype.F32 : Dtype.BF16;
    }
}
