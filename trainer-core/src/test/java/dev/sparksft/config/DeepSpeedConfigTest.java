package dev.sparksft.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparksft.UserError;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** LLaMA-Factory's DeepSpeed files (copies in test resources) and the refusals, asserted by message. */
class DeepSpeedConfigTest {
    static final String MINIMAL = "model_name_or_path: /models/tiny\ntemplate: qwen\ndataset: alpaca_en\n"
            + "per_device_train_batch_size: 2\ngradient_accumulation_steps: 4\n";

    static String resource(String name) throws Exception {
        try (InputStream in = DeepSpeedConfigTest.class.getResourceAsStream("/deepspeed/" + name)) {
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }

    static TrainingArguments args(Path dir, String extra) throws Exception {
        Path f = dir.resolve("config.yaml");
        Files.writeString(f, MINIMAL + extra);
        return SftConfig.load(f, List.of()).training();
    }

    static DeepSpeedConfig load(Path dir, String json, String extra) throws Exception {
        Path f = dir.resolve("ds.json");
        Files.writeString(f, json);
        return DeepSpeedConfig.load(f, args(dir, extra + "deepspeed: " + f + "\n"), 2);
    }

    static String refused(Path dir, String json, String extra) {
        return assertThrows(UserError.class, () -> load(dir, json, extra)).getMessage();
    }

    @Test
    void llamaFactorysStageZeroAndTwoFilesLoadUnchanged(@TempDir Path dir) throws Exception {
        assertEquals(0, load(dir, resource("ds_z0_config.json"), "").stage());
        DeepSpeedConfig z2 = load(dir, resource("ds_z2_config.json"), "bf16: true\n");
        assertEquals(2, z2.stage());
        assertFalse(z2.offloadOptimizer());
        DeepSpeedConfig offload = load(dir, resource("ds_z2_offload_config.json"), "");
        assertEquals(2, offload.stage());
        assertTrue(offload.offloadOptimizer());
    }

    @Test
    void theKeyBindsAndIsNoLongerRefused(@TempDir Path dir) throws Exception {
        assertEquals("/x/ds_z2_config.json", args(dir, "deepspeed: /x/ds_z2_config.json\n").deepspeed());
    }

    @Test
    void llamaFactorysStageThreeFilesLoadUnchanged(@TempDir Path dir) throws Exception {
        DeepSpeedConfig z3 = load(dir, resource("ds_z3_config.json"), "");
        assertEquals(3, z3.stage());
        assertFalse(z3.offloadOptimizer() || z3.offloadParam());
        DeepSpeedConfig offload = load(dir, resource("ds_z3_offload_config.json"), "");
        assertEquals(3, offload.stage());
        assertTrue(offload.offloadOptimizer() && offload.offloadParam());
    }

    @Test
    void theFp8StageThreeFileStaysRefused(@TempDir Path dir) throws Exception {
        // its DeepSpeed-only fields are refused by name (fp8 itself is refused by the run's device check)
        String m = refused(dir, resource("ds_z3_fp8_config.json"), "");
        assertTrue(m.contains("zero_force_ds_cpu_optimizer is not supported") && m.contains("comms_config"), m);
    }

    @Test
    void offloadParamBelowStageThreeIsRefused(@TempDir Path dir) throws Exception {
        String json = resource("ds_z3_offload_config.json").replace("\"stage\": 3", "\"stage\": 2");
        String m = refused(dir, json, "");
        assertTrue(m.contains("offload_param offloads parameters, which only ZeRO stage 3 does")
                && m.contains("remove offload_param"), m);
    }

    @Test
    void fp16IsRefused(@TempDir Path dir) throws Exception {
        String m = refused(dir, resource("ds_z2_config.json").replace("\"enabled\": \"auto\",\n    \"loss_scale\"",
                "\"enabled\": true,\n    \"loss_scale\""), "");
        assertTrue(m.contains("fp16.enabled is true") && m.contains("float32 or bfloat16"), m);
    }

    @Test
    void aNumberThatDisagreesWithOurKeysIsRefusedNamingBoth(@TempDir Path dir) throws Exception {
        String json = resource("ds_z2_config.json").replace("\"gradient_accumulation_steps\": \"auto\"",
                "\"gradient_accumulation_steps\": 8");
        String m = refused(dir, json, "");
        assertTrue(m.contains("gradient_accumulation_steps is 8 but gradient_accumulation_steps gives 4")
                && m.contains("set gradient_accumulation_steps to \"auto\" (or 4)"), m);
        // numbers that agree are fine: 2 x 4 x 2 ranks = 16
        assertEquals(2, load(dir, resource("ds_z2_config.json").replace("\"train_batch_size\": \"auto\"",
                "\"train_batch_size\": 16").replace("\"gradient_clipping\": \"auto\"", "\"gradient_clipping\": 1.0"), "")
                .stage());
        String batch = refused(dir, resource("ds_z2_config.json").replace("\"train_batch_size\": \"auto\"",
                "\"train_batch_size\": 32"), "");
        assertTrue(batch.contains("train_batch_size is 32 but per_device_train_batch_size x gradient_accumulation_steps"
                + " x world_size gives 16"), batch);
        String bf16 = refused(dir, resource("ds_z2_config.json").replace("\"bf16\": {\n    \"enabled\": \"auto\"",
                "\"bf16\": {\n    \"enabled\": true"), "");
        assertTrue(bf16.contains("bf16.enabled is true but bf16 is false"), bf16);
    }

    @Test
    void tensorParallelIsRefusedByName(@TempDir Path dir) throws Exception {
        String m = refused(dir, resource("ds_z2_autotp_config.json"), "");
        assertTrue(m.contains("tensor_parallel is not supported") && m.contains("remove tensor_parallel"), m);
    }

    @Test
    void aMissingOrInvalidFileIsRefusedNamingThePath(@TempDir Path dir) throws Exception {
        Path missing = dir.resolve("nowhere/ds_z2_config.json");
        String m = assertThrows(UserError.class, () -> DeepSpeedConfig.load(missing, args(dir, ""), 1)).getMessage();
        assertTrue(m.contains("deepspeed: " + missing + " does not exist") && m.contains("every executor"), m);
        String invalid = refused(dir, "{\"zero_optimization\": {", "");
        assertTrue(invalid.contains("ds.json is not valid JSON"), invalid);
    }
}
