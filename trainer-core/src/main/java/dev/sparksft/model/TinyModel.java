package dev.sparksft.model;

import dev.sparksft.UserError;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sparksft.tokenizer.ByteLevelBpe;
import dev.sparksft.tokenizer.Tokenizer;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.bytedeco.pytorch.Tensor;

/**
 * Writes a complete, randomly initialised Hugging Face model directory: config.json,
 * model.safetensors, generation_config.json and a tokenizer (the project's own small byte-level
 * BPE with ChatML special tokens, or a copy of another model's tokenizer files).
 *
 * <p>Initialisation follows transformers' {@code _init_weights}: normal(0, initializer_range)
 * for projections and embeddings, ones for norms (zeros for Gemma's, which scale by 1 + w), zeros
 * for biases; seeded, so the same options give the same bytes. A Gemma config is written as
 * transformers 4.57 saves Gemma2Config / Gemma3TextConfig (gemma3: the text model's keys under
 * text_config, weights under model.language_model., no vision tower); a Phi-3 one as Phi3Config
 * saves it, its q/k/v and gate/up fused (qkv_proj, gate_up_proj).
 */
public final class TinyModel {
    static final List<String> CHATML_TOKENS = List.of("<|endoftext|>", "<|im_start|>", "<|im_end|>");
    static final String CHATML_TEMPLATE = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
            + "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
            + "{{ '<|im_start|>assistant\\n' }}{% endif %}";
    static final List<String> TOKENIZER_FILES = List.of("tokenizer.json", "tokenizer_config.json",
            "special_tokens_map.json", "added_tokens.json", "vocab.json", "merges.txt", "tokenizer.model");
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final double INITIALIZER_RANGE = 0.02;

    /**
     * The architecture options of the command line.
     *
     * @param arch      a model_type of {@link Architecture}
     * @param ropeTheta 0 for the architecture's usual value
     */
    public record Options(String arch, Path out, long seed, int hidden, int layers, int heads, int kvHeads,
                          int intermediate, Path tokenizer, int merges, double ropeTheta) {
        public Options {
            List<String> problems = new java.util.ArrayList<>();
            if (Architecture.ofModelType(arch) == null || Architecture.ofModelType(arch).visionLanguage()) {
                problems.add("--arch must be one of " + String.join(", ", Architecture.textModelTypes()) + ", got '"
                        + arch + "'");
            }
            if (out == null) {
                problems.add("--out DIR is required");
            }
            if (hidden < 2 || layers < 1 || heads < 1 || kvHeads < 1 || intermediate < 1) {
                problems.add("--hidden, --layers, --heads, --kv-heads and --intermediate must be positive");
            } else {
                if (hidden % heads != 0 || (hidden / heads) % 2 != 0) {
                    problems.add("--hidden (" + hidden + ") / --heads (" + heads + ") must be an even integer head size");
                }
                if (heads % kvHeads != 0) {
                    problems.add("--heads (" + heads + ") must be a multiple of --kv-heads (" + kvHeads + ")");
                }
            }
            if (ropeTheta < 0) {
                problems.add("--rope-theta must be > 0, got " + ropeTheta);
            }
            if (merges < 0) {
                problems.add("--merges must be >= 0, got " + merges);
            }
            if (!problems.isEmpty()) {
                throw new UserError(String.join("; ", problems));
            }
        }
    }

    private TinyModel() {}

    public static void write(Options o) throws IOException {
        write(o, Dtype.F32);
    }

    /** {@link #write(Options)} with the weights stored in {@code dtype} (F32, BF16 or F16), as real checkpoints are. */
    public static void write(Options o, Dtype dtype) throws IOException {
        write(o, dtype, 0);
    }

    /**
     * {@link #write(Options, Dtype)} with a vocabulary of at least {@code vocabSize} rows (a real
     * model's shape: Llama 3's 128256) over the project's small tokenizer. The weights are drawn
     * and written one tensor at a time, so a model larger than memory can be written.
     */
    public static void write(Options o, Dtype dtype, int vocabSize) throws IOException {
        Files.createDirectories(o.out());
        Tokenizer tok = o.tokenizer() == null ? writeOwnTokenizer(o.out(), o.merges()) : copyTokenizer(o.tokenizer(), o.out());
        try (tok) {
            ObjectNode config = config(o, tok);
            config.put("torch_dtype", dtype.torchName);
            ObjectNode text = config.has("text_config") ? (ObjectNode) config.get("text_config") : config;
            text.put("vocab_size", Math.max(vocabSize, tok.vocabSize()));
            ModelConfig cfg = ModelConfig.load(writeJson(o.out().resolve("config.json"), config).getParent());
            writeRandomWeights(cfg, o.seed(), dtype, o.out());
            ObjectNode gen = JSON.createObjectNode();
            putId(gen, "bos_token_id", tok.bosId());
            gen.putArray("eos_token_id").add(tok.eosId());
            putId(gen, "pad_token_id", tok.padId());
            gen.put("do_sample", false);
            gen.put("transformers_version", "4.57.0");
            writeJson(o.out().resolve("generation_config.json"), gen);
        }
    }

    private static Tokenizer writeOwnTokenizer(Path out, int merges) throws IOException {
        String corpus;
        try (InputStream in = TinyModel.class.getResourceAsStream("/dev/sparksft/tokenizer/corpus.txt")) {
            corpus = new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
        ByteLevelBpe.train(corpus, merges, CHATML_TOKENS)
                .write(out, new Tokenizer.SpecialTokens(null, "<|im_end|>", "<|endoftext|>"), CHATML_TEMPLATE);
        return Tokenizer.load(out);
    }

    private static Tokenizer copyTokenizer(Path from, Path out) throws IOException {
        if (!Files.isRegularFile(from.resolve("tokenizer.json"))) {
            throw new UserError("--tokenizer " + from + " has no tokenizer.json");
        }
        for (String f : TOKENIZER_FILES) {
            if (Files.isRegularFile(from.resolve(f)) && !from.toAbsolutePath().equals(out.toAbsolutePath())) {
                Files.copy(from.resolve(f), out.resolve(f), StandardCopyOption.REPLACE_EXISTING);
            }
        }
        return Tokenizer.load(out);
    }

    static ObjectNode config(Options o, Tokenizer tok) {
        Architecture arch = Architecture.ofModelType(o.arch());
        if (arch == Architecture.GEMMA3) {   // the text model's keys under text_config, as Gemma3Config saves them
            ObjectNode text = config(new Options(Architecture.GEMMA3_TEXT.modelType, o.out(), o.seed(), o.hidden(),
                    o.layers(), o.heads(), o.kvHeads(), o.intermediate(), o.tokenizer(), o.merges(), o.ropeTheta()), tok);
            ObjectNode c = JSON.createObjectNode();
            c.putArray("architectures").add(arch.hfClass);
            c.put("model_type", arch.modelType);
            for (String top : List.of("torch_dtype", "transformers_version", "bos_token_id", "eos_token_id", "pad_token_id")) {
                c.set(top, text.remove(top));
            }
            text.remove("architectures");
            c.set("text_config", text);
            return c;
        }
        ObjectNode c = JSON.createObjectNode();
        c.putArray("architectures").add(arch.hfClass);
        c.put("model_type", arch.modelType);
        c.put("hidden_size", o.hidden());
        c.put("intermediate_size", o.intermediate());
        c.put("num_hidden_layers", o.layers());
        c.put("num_attention_heads", o.heads());
        c.put("num_key_value_heads", o.kvHeads());
        if (arch.writesHeadDim) {
            c.put("head_dim", o.hidden() / o.heads());
        }
        c.put("vocab_size", tok.vocabSize());
        c.put("max_position_embeddings", 4096);
        c.put("rms_norm_eps", 1e-6);
        c.put("rope_theta", o.ropeTheta() > 0 ? o.ropeTheta() : arch.usualRopeTheta);
        if (arch.isGemma()) {
            putGemmaKeys(c, arch, o);
        } else if (arch == Architecture.PHI3) {
            putPhi3Keys(c);
        } else {
            c.put("hidden_act", "silu");
        }
        if (arch == Architecture.QWEN3_MOE || arch == Architecture.MIXTRAL) {
            putMoeKeys(c, arch, o);
        }
        c.put("initializer_range", INITIALIZER_RANGE);
        c.put("tie_word_embeddings", arch.tiedByDefault);
        c.put("attention_dropout", 0.0);
        if (!arch.fixedAttentionBiases && arch != Architecture.PHI3) {   // qwen2's and phi3's biases are not configurable
            c.put("attention_bias", false);
        }
        putId(c, "bos_token_id", tok.bosId());
        putId(c, "eos_token_id", tok.eosId());
        putId(c, "pad_token_id", tok.padId());
        c.put("torch_dtype", "float32");
        c.put("use_cache", true);
        c.put("transformers_version", "4.57.0");
        return c;
    }

    /**
     * A small mixture of experts: 4 experts, each token routed to 2, experts as wide as
     * --intermediate; router_aux_loss_coef at transformers' default 0.001.
     */
    private static void putMoeKeys(ObjectNode c, Architecture arch, Options o) {
        c.put(arch == Architecture.MIXTRAL ? "num_local_experts" : "num_experts", 4);
        c.put("num_experts_per_tok", 2);
        c.put("output_router_logits", false);
        c.put("router_aux_loss_coef", 0.001);
        if (arch == Architecture.MIXTRAL) {
            c.putNull("sliding_window");
            c.put("router_jitter_noise", 0.0);
        } else {
            c.put("moe_intermediate_size", o.intermediate());
            c.put("norm_topk_prob", true);
            c.put("decoder_sparse_step", 1);
            c.putArray("mlp_only_layers");
            c.put("use_sliding_window", false);
        }
    }

    /** Phi3Config's own keys with its defaults: full rotary, no rope_scaling, no window, no dropout. */
    private static void putPhi3Keys(ObjectNode c) {
        c.put("hidden_act", "silu");
        c.put("original_max_position_embeddings", 4096);
        c.put("partial_rotary_factor", 1.0);
        c.putNull("rope_scaling");
        c.putNull("sliding_window");
        c.put("resid_pdrop", 0.0);
        c.put("embd_pdrop", 0.0);
    }

    /** Gemma2Config's / Gemma3TextConfig's own keys with their defaults, query_pre_attn_scalar = head_dim. */
    private static void putGemmaKeys(ObjectNode c, Architecture arch, Options o) {
        c.put("hidden_activation", "gelu_pytorch_tanh");
        c.put("query_pre_attn_scalar", o.hidden() / o.heads());
        c.put("sliding_window", 4096);
        c.put("cache_implementation", "hybrid");
        var types = c.putArray("layer_types");
        for (int i = 0; i < o.layers(); i++) {
            int pattern = arch == Architecture.GEMMA2 ? 2 : 6;
            types.add((i + 1) % pattern != 0 ? "sliding_attention" : "full_attention");
        }
        if (arch == Architecture.GEMMA2) {
            c.put("final_logit_softcapping", 30.0);
            c.put("attn_logit_softcapping", 50.0);
        } else {
            c.putNull("final_logit_softcapping");
            c.putNull("attn_logit_softcapping");
            c.putNull("rope_scaling");
            c.put("rope_local_base_freq", 10000.0);
            c.put("use_bidirectional_attention", false);
        }
    }

    /**
     * transformers' _init_weights for one tensor, float32: ones for norms (Gemma's: zeros, as it
     * scales by 1 + w), zeros for biases, else N(0, 0.02).
     */
    private static Tensor draw(String name, long[] shape, Random rng, boolean offsetNorms) {
        int n = (int) java.util.Arrays.stream(shape).reduce(1, Math::multiplyExact);
        float[] values = new float[n];
        if (name.endsWith("norm.weight")) {
            java.util.Arrays.fill(values, offsetNorms ? 0f : 1f);
        } else if (!name.endsWith(".bias")) {
            for (int i = 0; i < n; i++) {
                values[i] = (float) (rng.nextGaussian() * INITIALIZER_RANGE);
            }
        }
        return Tensor.create(values, shape);
    }

    /**
     * model.safetensors of random weights in HF order from {@code seed}, each tensor drawn when it
     * is written, under the names of the architecture's files.
     */
    private static void writeRandomWeights(ModelConfig cfg, long seed, Dtype dtype, Path out) throws IOException {
        Random rng = new Random(seed);
        String prefix = cfg.architecture().checkpointPrefix();
        Map<String, long[]> shapes = new LinkedHashMap<>();
        new ModelLayout(cfg).expectedShapes().forEach((n, shape) -> shapes.put(ModelLayout.storedName(n, prefix), shape));
        Map<String, Dtype> dtypes = new LinkedHashMap<>();
        shapes.keySet().forEach(n -> dtypes.put(n, dtype));
        boolean offsetNorms = cfg.forward().normOffset() != 0;
        Safetensors.write(out.resolve(ModelWeights.SINGLE_FILE), shapes, dtypes,
                name -> draw(name, shapes.get(name), rng, offsetNorms));
    }

    private static void putId(ObjectNode n, String key, Integer id) {
        if (id == null) {
            n.putNull(key);
        } else {
            n.put(key, id);
        }
    }

    private static Path writeJson(Path file, ObjectNode node) throws IOException {
        Files.writeString(file, JSON.writerWithDefaultPrettyPrinter().writeValueAsString(node));
        return file;
    }
}
