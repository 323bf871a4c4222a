package dev.sparksft.train;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sparksft.model.CausalLm;
import dev.sparksft.model.ModelConfig;
import dev.sparksft.model.ModelWeights;
import dev.sparksft.model.MoeConfig;
import dev.sparksft.runtime.Torch;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The router term's normalisation against the numpy reference (make_moe_fixtures.py): the
 * fixture's two rows as two micro-batches of one step (M = 2) backpropagate coef x (aux_row0 +
 * aux_row1) / 2, HF's per-micro-batch mean, and log (aux_row0 + aux_row1) / 2; 1e-6 relative.
 */
class RouterAuxTest {
    @BeforeAll
    static void loadTorch() {
        Torch.load(1);
    }

    @Test
    void twoMicroBatchesGiveTheMeanOfTheirAuxTimesTheCoefficient() throws Exception {
        Path dir = Paths.get(RouterAuxTest.class.getResource("/parity/qwen3_moe/config.json").toURI()).getParent();
        JsonNode expected = new ObjectMapper().readTree(dir.resolve("expected.json").toFile());
        ModelConfig cfg = ModelConfig.load(dir);
        CausalLm model = new CausalLm(cfg, ModelWeights.load(dir, cfg));
        MoeConfig moe = RouterAux.of(model);
        RouterAux aux = new RouterAux(moe, 2);
        long[][] ids = new ObjectMapper().convertValue(expected.get("input_ids"), long[][].class);
        long[][] mask = new ObjectMapper().convertValue(expected.get("attention_mask"), long[][].class);
        double terms = 0;
        for (int row = 0; row < 2; row++) {
            Tensor rowIds = Tensor.create(ids[row], 1, ids[row].length);
            Tensor rowMask = Tensor.create(mask[row], 1, mask[row].length);
            long[] pos = new long[ids[row].length];
            for (int i = 0; i < pos.length; i++) {
                pos[i] = i;
            }
            List<Tensor> router = new ArrayList<>();
            CausalLm.Context ctx = model.context(rowMask, Tensor.create(pos, 1, pos.length), null)
                    .collectingRouterLogits(router);
            Tensor x = model.embed(rowIds);
            for (int i = 0; i < model.numLayers(); i++) {
                x = model.layer(i, x, ctx);
            }
            terms += aux.term(router, rowMask).item_double();
        }
        double mean = (expected.get("aux_loss_rows").get(0).asDouble() + expected.get("aux_loss_rows").get(1).asDouble()) / 2;
        assertEquals(0.001 * mean, terms, 1e-6 * 0.001 * mean, "backpropagated: coef x mean aux");
        assertEquals(mean, aux.sum * aux.weight / moe.routerAuxLossCoef(), 1e-6 * mean, "logged: mean aux");
    }
}
