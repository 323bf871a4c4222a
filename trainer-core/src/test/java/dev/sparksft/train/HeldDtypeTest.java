package dev.sparksft.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparksft.cli.TrainCommand;
import dev.sparksft.config.SftConfig;
import dev.sparksft.data.SyntheticTasks;
import dev.sparksft.model.CausalLm;
import dev.sparksft.model.Dtype;
import dev.sparksft.model.ModelLayout;
import dev.sparksft.model.TinyModel;
import dev.sparksft.runtime.Torch;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Weights are held in the dtype the run needs, from loading on: bf16 autocast keeps float32
 * masters only for what trains and holds frozen weights (a LoRA base, freeze's frozen layers) in
 * bf16; pure_bf16 holds everything in bf16; an fp32 run holds float32. Runs of each kind train.
 */
class HeldDtypeTest {
    @TempDir
    static Path shared;
    static final Device CPU = new Device(torch.DeviceType.CPU);

    @BeforeAll
    static void model() throws Exception {
        Torch.load(1);
        TinyModel.write(new TinyModel.Options("llama", shared.resolve("model"), 4, 32, 2, 4, 2, 64, null, 0, 0));
        SyntheticTasks.write(SyntheticTasks.Task.SORT, shared.resolve("sort.jsonl"), 16, 6, 1);
    }

    static SftConfig config(String method) throws Exception {
        Path yaml = Files.writeString(shared.resolve(method.hashCode() + ".yaml"), "model_name_or_path: "
                + shared.resolve("model") + "\ntemplate: chatml\ndataset: sort.jsonl\ndataset_dir: " + shared
                + "\ncutoff_len: 64\ndo_train: true\nper_device_train_batch_size: 4\nmax_steps: 2\nlearning_rate: 1.0e-3\n"
                + "logging_steps: 1\nsave_strategy: \"no\"\nnum_threads: 1\noverwrite_output_dir: true\noutput_dir: "
                + shared.resolve("out-" + method.hashCode()) + "\n" + method.replace(";", "\n") + "\n");
        return SftConfig.load(yaml, List.of());
    }

    static Map<String, Tensor> weights(SftConfig c) throws Exception {
        CausalLm m = Models.forTraining(c, Path.of(c.model().modelNameOrPath()), null, null, 0, CPU);
        return m.weights().tensors();
    }

    static Dtype dtype(Tensor t) {
        return Dtype.of(t.scalar_type());
    }

    @Test
    void loraUnderBf16HoldsTheFrozenBaseInBf16AndTheTrainedModulesInFloat32() throws Exception {
        SftConfig c = config("finetuning_type: lora;bf16: true;additional_target: lm_head");
        weights(c).forEach((name, t) -> assertEquals(name.equals(ModelLayout.LM_HEAD) ? Dtype.F32 : Dtype.BF16, dtype(t),
                name));
        assertTrue(Double.isFinite(TrainCommand.run(c).trainLoss()), "LoRA over a bf16 base trains");
    }

    @Test
    void freezeUnderBf16HoldsFrozenLayersInBf16AndTrainsTheRestInFloat32() throws Exception {
        SftConfig c = config("finetuning_type: freeze;freeze_trainable_layers: 1;bf16: true");
        weights(c).forEach((name, t) -> assertEquals(name.startsWith(ModelLayout.layerPrefix(1)) ? Dtype.F32 : Dtype.BF16,
                dtype(t), name));
        assertTrue(Double.isFinite(TrainCommand.run(c).trainLoss()), "mixed bf16 and float32 layers train");
    }

    @Test
    void pureBf16HoldsEverythingInBf16AndFloat32RunsHoldFloat32() throws Exception {
        weights(config("finetuning_type: full;pure_bf16: true")).forEach((name, t) -> assertEquals(Dtype.BF16, dtype(t), name));
        weights(config("finetuning_type: full;bf16: true")).forEach((name, t) -> assertEquals(Dtype.F32, dtype(t), name));
        weights(config("finetuning_type: lora")).forEach((name, t) -> assertEquals(Dtype.F32, dtype(t), name));
    }
}
