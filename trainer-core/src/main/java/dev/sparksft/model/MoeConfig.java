package dev.sparksft.model;

import dev.sparksft.UserError;
import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * The mixture-of-experts feedforward of qwen3_moe and mixtral, read from config.json: which
 * layers are sparse, how many experts, how many each token is routed to, and the checkpoint names
 * of the sparse block (transformers 4.x keeps one module per expert):
 * <pre>
 *   qwen3_moe  model.layers.{i}.mlp.gate.weight                         (experts, hidden)  the router
 *              model.layers.{i}.mlp.experts.{e}.gate_proj|up_proj.weight (moe_intermediate, hidden)
 *              model.layers.{i}.mlp.experts.{e}.down_proj.weight         (hidden, moe_intermediate)
 *   mixtral    model.layers.{i}.block_sparse_moe.gate.weight            (experts, hidden)
 *              model.layers.{i}.block_sparse_moe.experts.{e}.w1|w3.weight (intermediate, hidden)  gate, up
 *              model.layers.{i}.block_sparse_moe.experts.{e}.w2.weight    (hidden, intermediate)  down
 * </pre>
 * A dense layer of qwen3_moe (mlp_only_layers, or off the decoder_sparse_step) has Llama's mlp of
 * intermediate_size.
 *
 * @param block             the sparse block's module: "mlp" or "block_sparse_moe"
 * @param expertLeaves      an expert's gate, up and down linears, in that order
 * @param numExperts        num_experts (qwen3_moe) or num_local_experts (mixtral)
 * @param topK              num_experts_per_tok
 * @param normTopkProb      the k routing weights are renormalised to sum 1 (mixtral: always)
 * @param expertIntermediate an expert's hidden width: moe_intermediate_size, or mixtral's intermediate_size
 * @param sparseLayers      per layer, whether its feedforward is the sparse block
 * @param routerAuxLossCoef router_aux_loss_coef, the load-balancing loss's weight in training
 */
public record MoeConfig(String block, List<String> expertLeaves, int numExperts, int topK, boolean normTopkProb,
                        int expertIntermediate, List<Boolean> sparseLayers, double routerAuxLossCoef) {

    public MoeConfig {
        expertLeaves = List.copyOf(expertLeaves);
        sparseLayers = List.copyOf(sparseLayers);
    }

    /** The options of {@code arch} from config {@code c}; null for a dense architecture. Problems are named by key. */
    static MoeConfig read(Architecture arch, JsonNode c, int numLayers, int intermediateSize, String source) {
        if (arch != Architecture.QWEN3_MOE && arch != Architecture.MIXTRAL) {
            return null;
        }
        boolean mixtral = arch == Architecture.MIXTRAL;
        String countKey = mixtral ? "num_local_experts" : "num_experts";
        int experts = positive(c, countKey, mixtral ? 8 : 128, source);
        int topK = positive(c, "num_experts_per_tok", mixtral ? 2 : 8, source);
        if (topK > experts) {
            throw new UserError(source + ": num_experts_per_tok (" + topK + ") exceeds " + countKey + " (" + experts
                    + "); route each token to at most " + experts + " experts");
        }
        double coef = c.path("router_aux_loss_coef").asDouble(0.001);
        if (!(coef >= 0)) {
            throw new UserError(source + ": router_aux_loss_coef must be >= 0, got " + c.get("router_aux_loss_coef"));
        }
        List<Boolean> sparse = new ArrayList<>();
        if (mixtral) {
            if (c.path("router_jitter_noise").asDouble(0) != 0) {
                throw new UserError(source + ": router_jitter_noise=" + c.get("router_jitter_noise") + " is not "
                        + "supported (random multiplicative noise on the router's input); set router_jitter_noise: 0");
            }
            for (int i = 0; i < numLayers; i++) {
                sparse.add(true);
            }
            return new MoeConfig("block_sparse_moe", List.of("w1", "w3", "w2"), experts, topK, true, intermediateSize,
                    sparse, coef);
        }
        int step = positive(c, "decoder_sparse_step", 1, source);
        Set<Integer> dense = new HashSet<>();
        JsonNode only = c.get("mlp_only_layers");
        if (only != null && !only.isNull()) {
            if (!only.isArray()) {
                throw new UserError(source + ": mlp_only_layers must be a list of layer indices, got " + only);
            }
            for (JsonNode n : only) {
                if (!n.canConvertToInt() || n.asInt() < 0 || n.asInt() >= numLayers) {
                    throw new UserError(source + ": mlp_only_layers entry " + n + " is not a layer index 0.."
                            + (numLayers - 1));
                }
                dense.add(n.asInt());
            }
        }
        for (int i = 0; i < numLayers; i++) {   // Qwen3MoeDecoderLayer's rule
            sparse.add(!dense.contains(i) && (i + 1) % step == 0);
        }
        return new MoeConfig("mlp", List.of("gate_proj", "up_proj", "down_proj"), experts, topK,
                c.path("norm_topk_prob").asBoolean(false), positive(c, "moe_intermediate_size", 768, source), sparse, coef);
    }

    private static int positive(JsonNode c, String key, int dflt, String source) {
        JsonNode v = c.get(key);
        if (v == null || v.isNull()) {
            return dflt;
        }
        if (!v.canConvertToInt() || v.asInt() <= 0) {
            throw new UserError(source + ": " + key + " must be a positive integer, got " + v);
        }
        return v.asInt();
    }

    /** Whether decoder layer {@code layer}'s feedforward is the sparse block. */
    public boolean sparse(int layer) {
        return sparseLayers.get(layer);
    }

    /** The router of layer {@code layer}: "model.layers.3.mlp.gate", an nn.Linear without bias. */
    public String router(int layer) {
        return ModelLayout.layerPrefix(layer) + block + ".gate";
    }

    /** Linear {@code leaf} (one of {@link #expertLeaves}) of expert {@code expert}: "model.layers.3.mlp.experts.5.up_proj". */
    public String expertLinear(int layer, int expert, String leaf) {
        return ModelLayout.layerPrefix(layer) + block + ".experts." + expert + "." + leaf;
    }

    /**
     * A message refusing {@code storedName} when it is a fused experts tensor (transformers 5 stores
     * the experts of a layer as 3-D {@code experts.gate_up_proj} / {@code experts.down_proj}); else null.
     */
    static String fusedExperts(String storedName) {
        if (storedName.matches(".*\\.experts\\.(gate_up_proj|down_proj|gate_proj|up_proj|w1|w2|w3)(\\.weight)?")) {
            return "tensor '" + storedName + "' holds all experts of a layer in one fused tensor (transformers 5's "
                    + "layout); only per-expert weights (experts.{e}.<linear>.weight, as the hub's checkpoints store "
                    + "them) are supported: save the model with transformers 4.x";
        }
        return null;
    }
}
