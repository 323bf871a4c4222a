package dev.sparksft.model;

import dev.sparksft.image.VisionInputs;
import dev.sparksft.UserError;
import java.util.ArrayList;
import java.util.List;
import org.bytedeco.pytorch.DoubleOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * A decoder-only transformer of the Llama family (llama, mistral, qwen2, qwen3): token embedding,
 * {@code num_hidden_layers} pre-norm blocks of grouped-query attention with RoPE and a SwiGLU MLP,
 * a final RMSNorm and the LM head (tied to the embedding when {@code tie_word_embeddings}).
 * Gemma 2 and 3 are the same model with the {@link ForwardOptions} transformers' Gemma code
 * has: embeddings scaled by sqrt(hidden), (1 + w) norms, sandwich-normed blocks, GeGLU,
 * soft-capped scores and logits, and full or sliding attention (each with its RoPE) per layer.
 * Phi-3 is Llama's block with q/k/v and gate/up each one fused matmul, sliced after it, and RoPE
 * on part of each head ({@link RotaryEmbedding}).
 * qwen3_moe and mixtral replace the MLP of their sparse layers by a mixture of experts ({@link SparseMoe}).
 * Qwen2-VL and Qwen2.5-VL are Qwen2 under a {@link VisionTower}: {@link #embed(Tensor, VisionInputs)} puts the
 * tower's image features at the image tokens, and the layers take M-RoPE's (3, batch, seq) positions
 * ({@link #ropeIndex}).
 *
 * <p>A vision-language batch, for the trainer:
 * <pre>
 *   MropePositions pos = model.ropeIndex(inputIds, attentionMask, images);   // images: null for text only
 *   Tensor x = model.embed(inputIds, images);                               // (batch, seq, hidden)
 *   Context ctx = model.context(attentionMask, pos.positionIds(), null);   // (3, batch, seq) positions
 *   for (int i = 0; i < model.numLayers(); i++) x = model.layer(i, x, ctx);
 *   Tensor logits = model.head(x);                                          // or forward(..., null, images)
 * </pre>
 * A text-only batch may also keep its (batch, seq) positions: M-RoPE over three equal axes is 1-D RoPE.
 *
 * <p>This class is the math; the parameters live in {@link ModelWeights}, under the names
 * {@link ModelLayout} gives, and are referenced here per layer. Each line of {@link #forward} mirrors transformers' modelling code.
 */
public final class CausalLm {
    private final ModelConfig cfg;
    private final ModelWeights weights;
    private final Tensor embedTokens; // (vocab, hidden)
    private final List<Layer> layers;
    private final Tensor norm;        // (hidden)
    private final Tensor lmHead;      // (vocab, hidden)
    private final RotaryEmbedding rope;
    private final RotaryEmbedding localRope; // Gemma 3's sliding layers' RoPE; null: rope on every layer
    private final ForwardOptions opts;
    private final Adapter adapter;    // null without an adapter
    private final LoraAdapter lora;   // the adapter when it is LoRA, else null
    private final OftAdapter oft;     // the adapter when it is OFT, else null
    private final Qwen2VlConfig vl;   // Qwen2-VL's image tokens and vision tower config; null for a text model
    private final VisionTower visual; // null for a text model

    /**
     * A linear layer: x W^T + b, plus the LoRA term when the weight is adapted, or with x rotated
     * first when OFT adapts it (bias, lora and oft may be null; {@code rotation} is OFT's parameter).
     * W is the tensor {@code w} or, held in 4 bits, {@code q} dequantized for this matmul alone.
     */
    record Proj(Tensor w, QuantizedWeight q, Tensor b, LoraAdapter lora, LoraAdapter.Pair pair, OftAdapter oft,
                Tensor rotation) {
        Tensor apply(Tensor x) {
            Tensor weight = q == null ? w : q.dequantize();                    // (out, in)
            Tensor in = rotation == null ? x : oft.rotate(x, rotation);
            Tensor y = b == null ? torch.linear(in, weight) : torch.linear(in, weight, new TensorOptional(b));
            return pair == null ? y : lora.addTo(y, x, pair);
        }

        /** Whether any of its parameters (weight, bias, adapter) trains now. */
        boolean trains() {
            return w != null && w.requires_grad() || b != null && b.requires_grad()
                    || pair != null && (pair.a().requires_grad() || pair.b().requires_grad())
                    || rotation != null && rotation.requires_grad();
        }
    }

    /**
     * One decoder block's parameters; q/k norms and the feedforward norms (Gemma's) are null where
     * the architecture has none. {@code sliding}: the layer attends within sliding_window. Phi-3's
     * fused projections: {@code q} is qkv_proj and {@code gate} is gate_up_proj, with k, v and up null.
     * A sparse layer (qwen3_moe, mixtral) has its {@link SparseMoe} in {@code moe} and no gate, up and down.
     */
    record Layer(Tensor inputNorm, Proj q, Proj k, Proj v, Tensor qNorm, Tensor kNorm, Proj o, Tensor postNorm,
                 Tensor preFeedforwardNorm, Tensor postFeedforwardNorm, Proj gate, Proj up, Proj down, boolean sliding,
                 SparseMoe moe) {}

    /** The model saved in {@code dir}, refused when its vocabulary is smaller than the tokenizer's. */
    public static CausalLm load(java.nio.file.Path dir, int tokenizerVocabSize) throws java.io.IOException {
        return load(dir, tokenizerVocabSize, new org.bytedeco.pytorch.Device(torch.DeviceType.CPU));
    }

    /** {@link #load(java.nio.file.Path, int)} with the weights on {@code device}. */
    public static CausalLm load(java.nio.file.Path dir, int tokenizerVocabSize, org.bytedeco.pytorch.Device device)
            throws java.io.IOException {
        return load(dir, tokenizerVocabSize, device, null);
    }

    /**
     * {@link #load(java.nio.file.Path, int, org.bytedeco.pytorch.Device)} with each weight held in the
     * dtype {@code heldAs} gives it for its name and the model's layout (null: float32 for all).
     */
    public static CausalLm load(java.nio.file.Path dir, int tokenizerVocabSize, org.bytedeco.pytorch.Device device,
                                java.util.function.BiFunction<String, ModelConfig, Dtype> heldAs) throws java.io.IOException {
        return load(dir, dev.sparksft.tokenizer.NewTokens.none(tokenizerVocabSize), 0, device, heldAs, null);
    }

    /**
     * {@link #load(java.nio.file.Path, int, org.bytedeco.pytorch.Device, java.util.function.BiFunction)} for a
     * tokenizer that tokens were added to: the embedding and the LM head resized as resize_vocab does
     * ({@link VocabResize}, its noise drawn from {@code seed}) before the weights move to {@code device};
     * and with the linear weights {@code quantization} names held in 4 bits (null: none), quantized
     * as they are read.
     */
    public static CausalLm load(java.nio.file.Path dir, dev.sparksft.tokenizer.NewTokens tokens, long seed,
                                org.bytedeco.pytorch.Device device,
                                java.util.function.BiFunction<String, ModelConfig, Dtype> heldAs,
                                FourBitQuantization quantization) throws java.io.IOException {
        ModelConfig cfg = ModelConfig.load(dir);
        if (!VocabResize.applies(cfg, tokens) && cfg.vocabSize() < tokens.vocabSize()) {
            throw new UserError("the tokenizer has " + tokens.vocabSize() + " tokens but the model's "
                    + "vocab_size (" + dir + "/config.json) is " + cfg.vocabSize() + "; set resize_vocab: true to grow "
                    + "the embedding and the LM head");
        }
        ModelWeights weights = ModelWeights.load(dir, cfg,
                heldAs == null ? name -> Dtype.F32 : name -> heldAs.apply(name, cfg), quantization);
        VocabResize.Resized resized = VocabResize.apply(cfg, weights, tokens, seed);
        if (resized.config().vocabSize() < tokens.vocabSize()) {
            throw new UserError("the tokenizer's highest token id is " + (tokens.vocabSize() - 1) + " but the resized "
                    + "embedding of " + dir + " has " + resized.config().vocabSize() + " rows (len(tokenizer) is "
                    + tokens.length() + "): the tokenizer's ids have gaps; use a tokenizer whose ids run 0..len-1");
        }
        return new CausalLm(resized.config(), resized.weights().to(device));
    }

    /** Where the weights (and so every batch) live. */
    public org.bytedeco.pytorch.Device device() {
        return weights.get(ModelLayout.EMBEDDING).device();
    }

    public CausalLm(ModelConfig cfg, ModelWeights weights) {
        this(cfg, weights, null);
    }

    /** The model with a LoRA or OFT adapter on its linear layers ({@code adapter} null: none). */
    public CausalLm(ModelConfig cfg, ModelWeights weights, Adapter adapter) {
        this.cfg = cfg;
        this.weights = weights;
        this.adapter = adapter;
        this.lora = adapter instanceof LoraAdapter l ? l : null;
        this.oft = adapter instanceof OftAdapter o ? o : null;
        ModelLayout layout = new ModelLayout(cfg);
        this.embedTokens = weights.get(ModelLayout.EMBEDDING);
        this.norm = weights.get(ModelLayout.FINAL_NORM);
        this.lmHead = cfg.tieWordEmbeddings() ? embedTokens : weights.get(ModelLayout.LM_HEAD);
        this.rope = new RotaryEmbedding(cfg);
        this.opts = cfg.forward();
        this.localRope = opts.localRopeTheta() > 0 ? RotaryEmbedding.local(cfg, opts.localRopeTheta()) : null;
        this.layers = new ArrayList<>();
        this.vl = cfg.visionLanguage();
        this.visual = vl == null ? null : new VisionTower(vl.vision(), weights, module -> weightProj(module, true));
        MoeConfig moe = cfg.moe();
        for (int i = 0; i < cfg.numLayers(); i++) {
            boolean fused = cfg.architecture().fusedProjections();
            boolean sparse = moe != null && moe.sparse(i);
            layers.add(new Layer(
                    weights.get(ModelLayout.inputNorm(i)),
                    proj(layout, i, fused ? "qkv_proj" : "q_proj"), fused ? null : proj(layout, i, "k_proj"),
                    fused ? null : proj(layout, i, "v_proj"),
                    optional(ModelLayout.queryNorm(i), cfg.qkNorm()),
                    optional(ModelLayout.keyNorm(i), cfg.qkNorm()),
                    proj(layout, i, "o_proj"),
                    weights.get(ModelLayout.postAttentionNorm(i)),
                    optional(ModelLayout.preFeedforwardNorm(i), opts.sandwichNorms()),
                    optional(ModelLayout.postFeedforwardNorm(i), opts.sandwichNorms()),
                    sparse ? null : proj(layout, i, fused ? "gate_up_proj" : "gate_proj"),
                    fused || sparse ? null : proj(layout, i, "up_proj"), sparse ? null : proj(layout, i, "down_proj"),
                    cfg.slidingLayer(i), sparse ? sparseMoe(moe, i) : null));
        }
    }

    /** Layer {@code layer}'s router and experts, each a {@link Proj} (so adapters and 4-bit weights apply). */
    private SparseMoe sparseMoe(MoeConfig moe, int layer) {
        List<Proj[]> experts = new ArrayList<>();
        for (int e = 0; e < moe.numExperts(); e++) {
            Proj[] linears = new Proj[3];
            for (int j = 0; j < 3; j++) {
                linears[j] = weightProj(moe.expertLinear(layer, e, moe.expertLeaves().get(j)), false);
            }
            experts.add(linears);
        }
        return new SparseMoe(weightProj(moe.router(layer), false), experts, moe.topK(), moe.normTopkProb());
    }

    private Proj proj(ModelLayout layout, int layer, String leaf) {
        return weightProj(ModelLayout.linear(layer, leaf), layout.hasBias(leaf));
    }

    /** The linear {@code module} ("model.layers.0.mlp.experts.3.up_proj"), with its bias when {@code bias}. */
    private Proj weightProj(String module, boolean bias) {
        String w = module + ".weight";
        LoraAdapter.Pair pair = lora == null ? null : lora.pair(w);
        Tensor rotation = oft == null ? null : oft.rotation(w);
        QuantizedWeight q = weights.quantized(w);
        return new Proj(q == null ? weights.get(w) : null, q, optional(module + ".bias", bias), lora, pair,
                oft, rotation);
    }

    /** This model's weights with {@code adapter} on its linear layers. */
    public CausalLm withAdapter(Adapter adapter) {
        return new CausalLm(cfg, weights, adapter);
    }

    /** The adapter (LoRA or OFT), or null. */
    public Adapter adapter() {
        return adapter;
    }

    /** The LoRA adapter, or null. */
    public LoraAdapter lora() {
        return lora;
    }

    private Tensor optional(String name, boolean present) {
        return present ? weights.get(name) : null;
    }

    public ModelConfig config() {
        return cfg;
    }

    public ModelWeights weights() {
        return weights;
    }

    /**
     * A collated batch's logits, (batch, seq, vocab): its images through the vision tower when it has
     * any, and for a vision-language model its M-RoPE positions.
     */
    public Tensor forward(dev.sparksft.data.Batch b) {
        Tensor x = embed(b);
        Context ctx = context(b);
        for (int i = 0; i < layers.size(); i++) {
            x = layer(i, x, ctx);
        }
        return head(x);
    }

    /** A batch's embed step: embed_tokens, and the image features at the image tokens when it has images. */
    public Tensor embed(dev.sparksft.data.Batch b) {
        return embed(b.inputIds(), b.images());
    }

    /**
     * A batch's {@link Context} without a cache: over its position ids, or for a vision-language
     * model over the (3, batch, seq) M-RoPE positions of its ids and images ({@link #ropeIndex}).
     */
    public Context context(dev.sparksft.data.Batch b) {
        Tensor positions = vl == null ? b.positionIds() : ropeIndex(b.inputIds(), b.attentionMask(), b.images()).positionIds();
        return context(b.attentionMask(), positions, null);
    }

    /**
     * @param inputIds      (batch, seq) int64 token ids
     * @param attentionMask (batch, seq) 1 for real tokens, 0 for padding
     * @param positionIds   (batch, seq) int64 positions (0.. per row, after any left padding)
     * @return (batch, seq, vocab) float32 logits
     */
    public Tensor forward(Tensor inputIds, Tensor attentionMask, Tensor positionIds) {
        return forward(inputIds, attentionMask, positionIds, null);
    }

    /**
     * Incremental decoding: {@code inputIds} are the new positions only, after the {@code cache.length()}
     * positions the cache holds (which this call extends).
     *
     * @param attentionMask (batch, past + seq): the cached positions' mask followed by the new ones'
     * @param cache         null for a plain forward over the whole sequence
     */
    public Tensor forward(Tensor inputIds, Tensor attentionMask, Tensor positionIds, KvCache cache) {
        return forward(inputIds, attentionMask, positionIds, cache, null);
    }

    /**
     * {@link #forward(Tensor, Tensor, Tensor, KvCache)} of a vision-language model with the batch's images
     * ({@code images} null: none; a cached decode step has none).
     *
     * @param positionIds (3, batch, seq) M-RoPE positions ({@link #ropeIndex}; for decode steps
     *                    {@link MropePositions#decodePositions}), or (batch, seq) for text only
     */
    public Tensor forward(Tensor inputIds, Tensor attentionMask, Tensor positionIds, KvCache cache, VisionInputs images) {
        Tensor x = embed(inputIds, images);                             // (batch, seq, hidden)
        Context ctx = context(attentionMask, positionIds, cache);
        for (int i = 0; i < layers.size(); i++) {
            x = layer(i, x, ctx);
        }
        return head(x);                                                 // (batch, seq, vocab)
    }

    /**
     * What the decoder layers of one kind (full or sliding attention) share in a forward pass:
     * the rotary cos and sin of the positions, (batch, 1, seq, head_dim) each, and the attention
     * mask (null: plain causal).
     */
    public record AttentionInputs(Tensor cos, Tensor sin, Tensor mask) {}

    /**
     * What every decoder layer of one forward pass shares: the inputs of the full-attention
     * layers and of the sliding-window ones (null for a kind the model has no layer of), and the
     * KV cache (null outside generation).
     */
    public record Context(AttentionInputs full, AttentionInputs sliding, KvCache cache, List<Tensor> routerLogits) {
        public Context(AttentionInputs full, AttentionInputs sliding, KvCache cache) {
            this(full, sliding, cache, null);
        }

        AttentionInputs of(Layer layer) {
            return layer.sliding() ? sliding : full;
        }

        /**
         * This context collecting each sparse layer's router logits, (batch * seq, experts), into
         * {@code into} in layer order as the layers run (the load-balancing loss reads them).
         */
        public Context collectingRouterLogits(List<Tensor> into) {
            return new Context(full, sliding, cache, into);
        }
    }

    /**
     * Qwen2-VL's embed step: embed_tokens, then the vision tower's features of {@code images} in place of the
     * image tokens, in order (masked_scatter: image i's features fill its run of image tokens); {@code images}
     * null: embed_tokens alone. (batch, seq) ids to (batch, seq, hidden).
     */
    public Tensor embed(Tensor inputIds, VisionInputs images) {
        Tensor x = embed(inputIds);
        if (images == null) {
            return x;
        }
        if (visual == null) {
            throw new IllegalArgumentException("images given to a " + cfg.modelType() + " model, which has no vision tower");
        }
        Tensor features = visual.forward(images).to(x.scalar_type());    // (image tokens, hidden)
        Tensor isImage = inputIds.eq(new org.bytedeco.pytorch.Scalar(vl.imageTokenId())); // (batch, seq)
        long tokens = isImage.sum().item_long();
        if (tokens != features.size(0)) {
            throw new UserError("the batch has " + tokens + " image tokens (image_token_id " + vl.imageTokenId()
                    + ") but its " + images.numImages() + " image(s) give " + features.size(0) + " features; "
                    + "image tokens and features do not match: each image needs t*h*w/" + vl.vision().mergeUnit()
                    + " image tokens");
        }
        return x.masked_scatter(isImage.unsqueeze(-1).expand_as(x), features);
    }

    /** The image features of {@code images}, (image tokens, hidden): the vision tower's output, merger included. */
    public Tensor imageFeatures(VisionInputs images) {
        if (visual == null) {
            throw new IllegalArgumentException("a " + cfg.modelType() + " model has no vision tower");
        }
        return visual.forward(images);
    }

    /**
     * Qwen2-VL's M-RoPE positions of a batch (transformers' get_rope_index): (3, batch, seq) and each row's
     * rope delta, for {@link #context} and for decode steps after a prefill. {@code attentionMask} null: all real;
     * {@code images} null: text only.
     */
    public MropePositions ropeIndex(Tensor inputIds, Tensor attentionMask, VisionInputs images) {
        if (vl == null) {
            throw new IllegalArgumentException("M-RoPE positions are for a vision-language model; " + cfg.modelType()
                    + " takes (batch, seq) positions");
        }
        return MropePositions.of(inputIds, attentionMask, images, vl);
    }

    /**
     * The names of the parameters (held as tensors) of one part of the model ({@link ModelLayout#partOf}): what
     * freeze_vision_tower, freeze_multi_modal_projector and freeze_language_model freeze. A text model's are all
     * {@link ModelLayout.Part#LANGUAGE_MODEL}.
     */
    public List<String> parameterNames(ModelLayout.Part part) {
        return weights.tensors().keySet().stream().filter(n -> ModelLayout.partOf(n) == part).toList();
    }

    /** Qwen2-VL's multimodal config (vision tower, M-RoPE, image tokens), or null for a text model. */
    public Qwen2VlConfig visionLanguage() {
        return vl;
    }

    /** embed_tokens: (batch, seq) ids to (batch, seq, hidden), times sqrt(hidden) for Gemma. */
    public Tensor embed(Tensor inputIds) {
        Tensor x = torch.embedding(embedTokens, inputIds);
        return opts.scaleEmbedding() ? x.mul(embeddingScale(x)) : x;
    }

    /** Gemma's normalizer sqrt(hidden_size), rounded to the embeddings' dtype as transformers does (bf16: 5.65625 for 32). */
    private org.bytedeco.pytorch.Scalar embeddingScale(Tensor x) {
        double scale = Tensor.create(new double[] {Math.sqrt(cfg.hiddenSize())}).to(x.scalar_type()).item_double();
        return new org.bytedeco.pytorch.Scalar(scale);
    }

    /**
     * The {@link Context} of a forward pass over {@code positionIds}, after what {@code cache} holds: (batch, seq),
     * or for Qwen2-VL (3, batch, seq) M-RoPE positions.
     */
    public Context context(Tensor attentionMask, Tensor positionIds, KvCache cache) {
        long past = cache == null ? 0 : cache.length();
        boolean anySliding = layers.stream().anyMatch(Layer::sliding);
        boolean anyFull = layers.stream().anyMatch(l -> !l.sliding());
        Tensor[] cosSin = rope.cosSin(positionIds);                     // (batch, 1, seq, head_dim) each
        Tensor[] localCosSin = localRope == null || !anySliding ? cosSin : localRope.cosSin(positionIds);
        AttentionInputs full = !anyFull ? null
                : new AttentionInputs(cosSin[0], cosSin[1], mask(attentionMask, 0, positionIds.size(-1), past, cache));
        AttentionInputs sliding = !anySliding ? null : new AttentionInputs(localCosSin[0], localCosSin[1],
                mask(attentionMask, cfg.slidingWindow(), positionIds.size(-1), past, cache));
        return new Context(full, sliding, cache);
    }

    /** The mask of {@code seq} new queries after {@code past} cached keys, {@code window} keys back at most (0: all). */
    private Tensor mask(Tensor attentionMask, int window, long seq, long past, KvCache cache) {
        // Right padding only (training batches): a causal mask already keeps every real query away
        // from the padded keys, which all lie after it, so the fused causal kernel can run without
        // an explicit mask. Padded positions then differ, but they are never read. Soft-capped
        // attention is computed by hand and needs the mask written out.
        boolean windowed = window > 0 && window < past + seq;
        if (cache == null && isolatedSequences(attentionMask)) {
            return packedMask(attentionMask, window);                   // neat_packing: (batch, 1, seq, seq)
        } else if (cache == null && !windowed && !opts.capsAttention() && paddedOnTheRightOnly(attentionMask)) {
            return null;
        } else if (seq == 1 && !windowed) {
            // one new (real) token sees every real key: the padding mask alone, (batch, 1, 1, past + 1)
            return attentionMask.ne(new org.bytedeco.pytorch.Scalar(0)).unsqueeze(1).unsqueeze(1);
        }
        return attentionMask(attentionMask, window, past);              // (batch, 1, seq, past + seq) bool
    }

    /**
     * Decoder layer {@code i}: x + attention(norm(x)), then + mlp(norm(.)); Gemma also normalises
     * each branch's output (sandwich norms). (batch, seq, hidden) both ways.
     */
    public Tensor layer(int i, Tensor x, Context ctx) {
        Layer l = layers.get(i);
        Tensor attended = attention(l, rmsNorm(x, l.inputNorm()), ctx.of(l), i, ctx.cache());
        if (opts.sandwichNorms()) {
            x = x.add(rmsNorm(attended, l.postNorm()));                // post_attention_layernorm
            return x.add(rmsNorm(mlp(l, rmsNorm(x, l.preFeedforwardNorm())), l.postFeedforwardNorm()));
        }
        x = x.add(attended);
        Tensor h = rmsNorm(x, l.postNorm());
        return x.add(l.moe() != null ? l.moe().apply(h, ctx.routerLogits()) : mlp(l, h));
    }

    /** The final norm and the LM head: (batch, seq, hidden) to (batch, seq, vocab) logits, soft-capped for Gemma 2. */
    public Tensor head(Tensor x) {
        Tensor logits = torch.linear(rmsNorm(x, norm), lmHead);
        return opts.finalSoftcap() > 0 ? softcap(logits, opts.finalSoftcap()) : logits;
    }

    /** tanh(x / cap) * cap: x squashed smoothly into (-cap, cap). */
    private static Tensor softcap(Tensor x, double cap) {
        return x.div(new org.bytedeco.pytorch.Scalar(cap)).tanh().mul(new org.bytedeco.pytorch.Scalar(cap));
    }

    public int numLayers() {
        return layers.size();
    }

    /** Whether any parameter of decoder layer {@code i} (its adapter's included) trains now. */
    public boolean layerTrains(int i) {
        Layer l = layers.get(i);
        List<Proj> projs = new ArrayList<>(java.util.Arrays.asList(l.q(), l.k(), l.v(), l.o()));
        projs.addAll(l.moe() != null ? l.moe().projections() : java.util.Arrays.asList(l.gate(), l.up(), l.down()));
        for (Proj p : projs) {
            if (p == null) {
                continue;                                               // Phi-3's k, v, up: inside the fused projections
            }
            if (p.trains()) {
                return true;
            }
        }
        for (Tensor t : new Tensor[] {l.inputNorm(), l.postNorm(), l.qNorm(), l.kNorm(), l.preFeedforwardNorm(),
                l.postFeedforwardNorm()}) {
            if (t != null && t.requires_grad()) {
                return true;
            }
        }
        return false;
    }

    /**
     * The names of the weights {@link #embed} reads: (vocab, hidden) embed_tokens, and a vision-language model's
     * whole vision tower (visual.*, the merger included), which its embed step runs.
     */
    public List<String> embeddingWeights() {
        if (visual == null) {
            return List.of(ModelLayout.EMBEDDING);
        }
        List<String> names = new ArrayList<>(List.of(ModelLayout.EMBEDDING));
        weights.tensors().keySet().stream().filter(n -> n.startsWith(VisionLayout.PREFIX)).forEach(names::add);
        return names;
    }

    /** The names of the weights {@link #head} reads: the final norm and the LM head (embed_tokens when tied). */
    public List<String> headWeights() {
        return List.of(ModelLayout.FINAL_NORM, cfg.tieWordEmbeddings() ? ModelLayout.EMBEDDING : ModelLayout.LM_HEAD);
    }

    /**
     * Whether the embed step trains now: the token embedding (with tied embeddings the head trains through it)
     * or any parameter of a vision-language model's vision tower or merger.
     */
    public boolean embeddingTrains() {
        return embedTokens.requires_grad() || visual != null && visual.trains();
    }

    /**
     * self_attn: softmax(q k^T * scale + mask) v with grouped kv heads; scale is head_dim^-0.5
     * (Gemma: query_pre_attn_scalar^-0.5), and Gemma 2 soft-caps the scores.
     */
    private Tensor attention(Layer l, Tensor h, AttentionInputs in, int index, KvCache cache) {
        long batch = h.size(0);
        long seq = h.size(1);
        int hd = cfg.headDim();
        Tensor[] qkv = queryKeyValue(l, h);
        // (batch, seq, heads * head_dim) -> (batch, heads, seq, head_dim)
        Tensor q = qkv[0].reshape(batch, seq, cfg.numHeads(), hd).transpose(1, 2);
        Tensor k = qkv[1].reshape(batch, seq, cfg.numKvHeads(), hd).transpose(1, 2);
        Tensor v = qkv[2].reshape(batch, seq, cfg.numKvHeads(), hd).transpose(1, 2);
        if (cfg.qkNorm()) { // qwen3, gemma3: q_norm / k_norm over head_dim, before RoPE
            q = rmsNorm(q, l.qNorm());
            k = rmsNorm(k, l.kNorm());
        }
        q = rope.apply(q, in.cos(), in.sin());                          // the local RoPE's angles on sliding layers
        k = rope.apply(k, in.cos(), in.sin());
        if (cache != null) {                                            // (batch, kv_heads, past + seq, head_dim)
            Tensor[] kv = cache.append(index, k, v);
            k = kv[0];
            v = kv[1];
        }
        boolean gqa = cfg.numKvHeads() != cfg.numHeads();
        Tensor mask = in.mask();
        DoubleOptional scale = opts.queryPreAttnScalar() > 0
                ? new DoubleOptional(Math.pow(opts.queryPreAttnScalar(), -0.5)) : new DoubleOptional();
        Tensor y = opts.capsAttention() ? softcappedAttention(q, k, v, mask, scale.get())
                : mask == null
                ? torch.scaled_dot_product_attention(q, k, v, new TensorOptional(), 0.0, true, scale, gqa)
                : torch.scaled_dot_product_attention(q, k, v, new TensorOptional(mask), 0.0, false,
                        scale, gqa);                                    // (batch, heads, seq, head_dim)
        y = y.transpose(1, 2).reshape(batch, seq, (long) cfg.numHeads() * hd);
        return l.o().apply(y);
    }

    /**
     * Gemma 2's eager attention, which the fused kernel cannot do: softmax(tanh(q k^T * scale / cap)
     * * cap + mask) v, the softmax in float32. q (batch, heads, seq, head_dim), k and v (batch,
     * kv_heads, total, head_dim), mask (batch, 1, seq, total) bool, never null here.
     */
    private Tensor softcappedAttention(Tensor q, Tensor k, Tensor v, Tensor mask, double scale) {
        long groups = cfg.numHeads() / cfg.numKvHeads();
        if (groups > 1) {                                               // repeat_kv: kv head j serves heads j*groups..
            k = k.repeat_interleave(groups, new org.bytedeco.pytorch.LongOptional(1), new org.bytedeco.pytorch.LongOptional());
            v = v.repeat_interleave(groups, new org.bytedeco.pytorch.LongOptional(1), new org.bytedeco.pytorch.LongOptional());
        }
        Tensor scores = softcap(q.matmul(k.transpose(2, 3)).mul(new org.bytedeco.pytorch.Scalar(scale)),
                opts.attentionSoftcap());                               // (batch, heads, seq, total)
        scores = scores.masked_fill(mask.logical_not(), new org.bytedeco.pytorch.Scalar(Double.NEGATIVE_INFINITY));
        Tensor probs = scores.softmax(-1, new org.bytedeco.pytorch.ScalarTypeOptional(wide(scores.scalar_type())));
        return probs.to(q.scalar_type()).matmul(v);
    }

    /**
     * q, k and v of (batch, seq, hidden) h: (batch, seq, heads * head_dim) and twice (batch, seq,
     * kv_heads * head_dim); Phi-3's qkv_proj(h) split in that order (its forward's slices).
     */
    private Tensor[] queryKeyValue(Layer l, Tensor h) {
        if (l.k() != null) {
            return new Tensor[] {l.q().apply(h), l.k().apply(h), l.v().apply(h)};
        }
        long q = (long) cfg.numHeads() * cfg.headDim();
        long kv = (long) cfg.numKvHeads() * cfg.headDim();
        Tensor qkv = l.q().apply(h);                                    // (batch, seq, q + 2 kv)
        return new Tensor[] {qkv.narrow(-1, 0, q), qkv.narrow(-1, q, kv), qkv.narrow(-1, q + kv, kv)};
    }

    /**
     * mlp: down_proj(act(gate_proj(x)) * up_proj(x)), act silu (SwiGLU) or tanh-approximated gelu
     * (GeGLU); Phi-3: gate, up = gate_up_proj(x).chunk(2, dim=-1), down_proj(up * silu(gate)).
     */
    private Tensor mlp(Layer l, Tensor h) {
        if (l.up() == null) {
            Tensor gateUp = l.gate().apply(h);                          // (batch, seq, 2 * intermediate)
            long inter = cfg.intermediateSize();
            return l.down().apply(gateUp.narrow(-1, inter, inter).mul(torch.silu(gateUp.narrow(-1, 0, inter))));
        }
        Tensor gate = l.gate().apply(h);
        Tensor act = opts.activation() == ForwardOptions.Activation.GELU_TANH ? torch.gelu(gate, "tanh") : torch.silu(gate);
        return l.down().apply(act.mul(l.up().apply(h)));
    }

    /**
     * RMSNorm over the last dimension: w * x / rms(x); Gemma's is (1 + w) * x / rms(x) computed
     * in float32 (or wider) and cast back to x's dtype.
     */
    private Tensor rmsNorm(Tensor x, Tensor weight) {
        if (opts.normOffset() == 0) {
            return torch.rms_norm(x, new long[] {x.size(-1)}, new TensorOptional(weight), new DoubleOptional(cfg.rmsNormEps()));
        }
        Tensor wide = x.to(wide(x.scalar_type()));
        Tensor scale = weight.to(wide.scalar_type()).add(new org.bytedeco.pytorch.Scalar(opts.normOffset()));
        return torch.rms_norm(wide, new long[] {x.size(-1)}, new TensorOptional(scale),
                new DoubleOptional(cfg.rmsNormEps())).to(x.scalar_type());
    }

    /** float32 for the 16-bit types, which transformers' Gemma upcasts for norms and softmax; others as they are. */
    private static ScalarType wide(ScalarType t) {
        return t.value == ScalarType.BFloat16.value || t.value == ScalarType.Half.value ? ScalarType.Float : t;
    }

    /** A neat-packed batch: the attention mask numbers the sequences 1, 2, ... instead of holding 1s. */
    static boolean isolatedSequences(Tensor attentionMask) {
        return attentionMask.max().item_long() > 1;
    }

    /**
     * Block-diagonal causal mask for neat packing: query i sees key j <= i of the same sequence
     * (and within the sliding window); padded queries see themselves only.
     */
    static Tensor packedMask(Tensor attentionMask, int slidingWindow) {
        long seq = attentionMask.size(1);
        TensorOptions bool = new TensorOptions(ScalarType.Bool);
        Tensor causal = torch.tril(torch.ones(new long[] {seq, seq}, bool));
        if (slidingWindow > 0 && slidingWindow < seq) {
            causal = causal.logical_and(torch.triu(torch.ones(new long[] {seq, seq}, bool), 1 - slidingWindow));
        }
        causal = causal.to(attentionMask.device(), ScalarType.Bool);
        Tensor self = torch.eye(seq, bool).to(attentionMask.device(), ScalarType.Bool);
        Tensor q = attentionMask.unsqueeze(2);                                  // (batch, seq, 1)
        Tensor k = attentionMask.unsqueeze(1);                                  // (batch, 1, seq)
        Tensor same = q.eq(k).logical_and(k.ne(new org.bytedeco.pytorch.Scalar(0)));  // (batch, seq, seq)
        return causal.logical_and(same.logical_or(self)).unsqueeze(1);          // (batch, 1, seq, seq)
    }

    /** True when no row has a real token after a padded one (mask[:, t] >= mask[:, t + 1]). */
    static boolean paddedOnTheRightOnly(Tensor attentionMask) {
        long seq = attentionMask.size(1);
        if (seq < 2) {
            return true;
        }
        Tensor later = attentionMask.narrow(1, 1, seq - 1);
        Tensor earlier = attentionMask.narrow(1, 0, seq - 1);
        return later.le(earlier).all().item_bool();
    }

    /**
     * Causal mask that also hides padded keys: allowed[b, 0, i, j] = j <= past + i and key j is
     * real (and past + i - j < window when the model has a sliding window), for queries i at
     * positions past.. of keys 0..past+seq. A padded query row may still see itself so that no row
     * is fully masked (which would give NaN); padded rows are never read.
     */
    static Tensor attentionMask(Tensor attentionMask, int slidingWindow, long past) {
        long total = attentionMask.size(1);
        long seq = total - past;
        TensorOptions bool = new TensorOptions(ScalarType.Bool);
        // the last seq rows of the (total, total) causal matrices
        Tensor causal = torch.tril(torch.ones(new long[] {total, total}, bool)).narrow(0, past, seq); // (seq, total)
        if (slidingWindow > 0 && slidingWindow < total) {
            causal = causal.logical_and(torch.triu(torch.ones(new long[] {total, total}, bool), 1 - slidingWindow)
                    .narrow(0, past, seq));
        }
        Tensor self = torch.eye(total, bool).narrow(0, past, seq);                    // (seq, total)
        causal = causal.to(attentionMask.device(), ScalarType.Bool);                   // made on the CPU, used where the batch is
        self = self.to(attentionMask.device(), ScalarType.Bool);
        Tensor keys = attentionMask.ne(new org.bytedeco.pytorch.Scalar(0)).unsqueeze(1).unsqueeze(1); // (batch, 1, 1, total)
        return causal.logical_and(keys.logical_or(self));                              // (batch, 1, seq, total)
    }
}
