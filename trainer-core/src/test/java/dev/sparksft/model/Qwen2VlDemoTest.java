package dev.sparksft.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sparksft.image.ImageProcessor;
import dev.sparksft.image.ImageProcessorConfig;
import dev.sparksft.image.PixelValues;
import dev.sparksft.image.VisionInputs;
import dev.sparksft.loss.CausalLmLoss;
import dev.sparksft.runtime.Torch;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The model side of the multimodal path end to end: LLaMA-Factory's mllm_demo images (resources/mllm) through the
 * project's image processor into the tiny Qwen2-VL of resources/qwen2vl_demo, each row's summed token loss against
 * transformers' float64 forward over PIL's pixels (make_qwen2vl_demo_fixture.py), within 1e-5 relative per row and
 * for eval_loss (float32 here; the pixels are the Java processor's, not PIL's).
 */
class Qwen2VlDemoTest {
    @BeforeAll
    static void loadTorch() {
        Torch.load(1);
    }

    static Path resource(String path) throws Exception {
        return Paths.get(Qwen2VlDemoTest.class.getResource(path).toURI());
    }

    @Test
    void demoRowsLossesMatchTransformers() throws Exception {
        Path modelDir = resource("/qwen2vl_demo/model/config.json").getParent();
        JsonNode expected = new ObjectMapper().readTree(resource("/qwen2vl_demo/expected.json").toFile());
        JsonNode rows = new ObjectMapper().readTree(resource("/mllm/mllm_demo.json").toFile());
        Path demo = resource("/mllm/mllm_demo.json").getParent();
        ImageProcessor processor = new ImageProcessor(ImageProcessorConfig.read(modelDir),
                ImageProcessor.DEFAULT_IMAGE_MAX_PIXELS, ImageProcessor.DEFAULT_IMAGE_MIN_PIXELS);
        ModelConfig cfg = ModelConfig.load(modelDir);
        CausalLm model = new CausalLm(cfg, ModelWeights.load(modelDir, cfg));
        double lossSum = 0;
        double wantSum = 0;
        long targets = 0;
        long wantTargets = 0;
        for (JsonNode row : expected.get("rows")) {
            try (PointerScope scope = new PointerScope(); NoGradGuard g = new NoGradGuard()) {
                List<PixelValues> images = new ArrayList<>();
                for (JsonNode image : rows.get(row.get("index").asInt()).get("images")) {
                    Path file = demo.resolve(image.asText());
                    images.add(processor.process(Files.readAllBytes(file), file.toString()));
                }
                int[][] grids = images.stream().map(p -> new int[] {p.grid().t(), p.grid().h(), p.grid().w()})
                        .toArray(int[][]::new);
                assertArrayEquals(new ObjectMapper().convertValue(row.get("image_grid_thw"), int[][].class), grids);
                int patchDim = images.get(0).patchDim();
                VisionInputs vision = new VisionInputs(Tensor.create(PixelValues.concat(images),
                        PixelValues.concat(images).length / patchDim, patchDim), grids);
                long[] ids = new ObjectMapper().convertValue(row.get("input_ids"), long[].class);
                long[] labels = new ObjectMapper().convertValue(row.get("labels"), long[].class);
                Tensor inputIds = Tensor.create(ids, 1, ids.length);
                Tensor mask = inputIds.new_ones(new long[] {1, ids.length});
                Tensor logits = model.forward(inputIds, mask, model.ropeIndex(inputIds, mask, vision).positionIds(), null,
                        vision);
                Tensor labelTensor = Tensor.create(labels, 1, labels.length);
                double loss = CausalLmLoss.tokenLosses(logits, labelTensor).sum().item_double();
                double want = row.get("loss_sum").asDouble();
                System.out.printf("qwen2vl demo row %d: loss sum %.6f vs %.6f (rel %.2e)%n", row.get("index").asInt(), loss,
                        want, Math.abs(loss - want) / want);
                assertEquals(want, loss, 1e-5 * want, "row " + row.get("index"));
                assertEquals(row.get("num_targets").asLong(), CausalLmLoss.countTargets(labelTensor));
                lossSum += loss;
                wantSum += want;
                targets += CausalLmLoss.countTargets(labelTensor);
                wantTargets += row.get("num_targets").asLong();
            }
        }
        assertEquals(wantTargets, targets);
        double evalLoss = lossSum / targets;
        System.out.printf("qwen2vl demo: eval_loss %.6f vs %.6f%n", evalLoss, expected.get("eval_loss").asDouble());
        assertEquals(expected.get("eval_loss").asDouble(), evalLoss, 1e-5 * evalLoss);
        assertEquals(expected.get("eval_loss").asDouble(), wantSum / wantTargets, 1e-9, "the fixture's own sum");
    }
}
