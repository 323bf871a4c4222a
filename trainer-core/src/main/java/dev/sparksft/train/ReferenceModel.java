package dev.sparksft.train;

import dev.sparksft.config.SftConfig;
import dev.sparksft.data.Batch;
import dev.sparksft.model.CausalLm;
import dev.sparksft.model.Dtype;
import dev.sparksft.model.ModelWeights;
import dev.sparksft.runtime.Autocast;
import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;

/**
 * ASFT's reference: the frozen model the run started from, whose next-token distributions the
 * loss keeps the model close to (LLaMA-Factory's create_ref_model without ref_model: the model of
 * model_name_or_path, loaded again and never trained). Only the weights that train are copied,
 * read from model_name_or_path (also when resuming: the reference is the start of the whole run,
 * not of the resumed part) and held in the run's compute dtype (bfloat16 with bf16 or pure_bf16,
 * else float32); every frozen weight is the model's own tensor, shared. So full fine-tuning holds
 * a second copy of the model, freeze one of its trained layers, and LoRA none: its reference is
 * the base model without the adapter (the adapter-disabled model LLaMA-Factory's DPO uses for
 * LoRA; LLaMA-Factory's SFT builds no reference for LoRA), which is the starting model while a new
 * adapter's B is zero; additional_target modules are copied. It runs forward without gradients on
 * each micro-batch, under the run's autocast.
 */
public final class ReferenceModel {
    private final CausalLm model;
    private final Map<String, Tensor> copies;

    private ReferenceModel(CausalLm model, Map<String, Tensor> copies) {
        this.model = model;
        this.copies = copies;
    }

    /**
     * The reference of {@code model}, the model being trained, with {@code trainable} its trained
     * tensors (model weights and adapter matrices, by name).
     *
     * @param modelDir model_name_or_path, local
     */
    public static ReferenceModel load(SftConfig config, CausalLm model, Set<String> trainable, Path modelDir)
            throws IOException {
        int storedVocab = dev.sparksft.model.ModelConfig.load(modelDir).vocabSize();
        if (storedVocab != model.config().vocabSize()) {
            throw new dev.sparksft.UserError("use_asft_loss: true with a resized vocabulary (resize_vocab, add_tokens, "
                    + "add_special_tokens or a template's added stop words: " + storedVocab + " -> "
                    + model.config().vocabSize() + " rows) is not supported: the reference model would need the same new "
                    + "rows; use a tokenizer that has the tokens, or use_asft_loss: false");
        }
        Map<String, Tensor> held = model.weights().tensors();
        Dtype compute = config.finetuning().pureBf16() || config.training().bf16() ? Dtype.BF16 : Dtype.F32;
        Map<String, Tensor> copies = new LinkedHashMap<>();
        if (held.keySet().stream().anyMatch(trainable::contains)) {
            ModelWeights read = ModelWeights.load(modelDir, model.config(), name -> compute,
                    name -> trainable.contains(name) && held.containsKey(name));
            read.tensors().forEach((name, t) -> copies.put(name, t.to(model.device(), t.scalar_type()).detach()));
        }
        Map<String, Tensor> weights = new LinkedHashMap<>(held);
        weights.putAll(copies);
        Map<String, Dtype> stored = new LinkedHashMap<>();
        held.keySet().forEach(n -> stored.put(n, model.weights().storedDtype(n)));
        return new ReferenceModel(new CausalLm(model.config(), new ModelWeights(weights, stored,
                model.weights().shardLayout())), copies);
    }

    /** The tensors the reference holds of its own (the model's trained weights at the start), by name. */
    public Map<String, Tensor> copies() {
        return java.util.Collections.unmodifiableMap(copies);
    }

    /**
     * @param bf16 the run's bf16 autocast
     * @return (batch, seq, vocab) logits without a graph
     */
    public Tensor logits(Batch b, boolean bf16) {
        try (NoGradGuard noGrad = new NoGradGuard(); Autocast autocast = Autocast.bf16(model.device(), bf16)) {
            return model.forward(b);
        }
    }
}
