package dev.sparksft.train;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparksft.config.SftConfig;
import dev.sparksft.data.Batch;
import dev.sparksft.data.Collator;
import dev.sparksft.data.Packing;
import dev.sparksft.data.TokenizedExample;
import dev.sparksft.dist.World;
import dev.sparksft.model.CausalLm;
import dev.sparksft.model.TinyModel;
import dev.sparksft.runtime.Torch;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Activation checkpointing changes memory, not gradients: one micro-batch's gradients of every
 * trainable tensor, layer by layer with recomputation against the plain backward, for each kind
 * of run it must handle (full, LoRA with dropout, freeze with frozen lower layers, tied
 * embeddings with q/k norms, neat-packed attention masks, bf16 autocast). Tolerance: 1e-6 of the
 * largest gradient (the recomputation runs the same kernels, so the difference is rounding of
 * the summation order at most).
 */
class ActivationCheckpointingTest {
    @TempDir
    static Path shared;
    static final Device CPU = new Device(torch.DeviceType.CPU);

    @BeforeAll
    static void models() throws Exception {
        Torch.load(1);
        TinyModel.write(new TinyModel.Options("llama", shared.resolve("llama"), 5, 32, 3, 4, 2, 64, null, 0, 0));
        TinyModel.write(new TinyModel.Options("qwen3", shared.resolve("qwen3"), 6, 32, 3, 4, 2, 64, null, 0, 0));
        TinyModel.write(new TinyModel.Options("gemma2", shared.resolve("gemma2"), 7, 32, 3, 4, 2, 64, null, 0, 0));
        TinyModel.write(new TinyModel.Options("gemma3", shared.resolve("gemma3"), 8, 32, 3, 4, 2, 64, null, 0, 0));
        TinyModel.write(new TinyModel.Options("phi3", shared.resolve("phi3"), 9, 32, 3, 4, 2, 64, null, 0, 0));
        TinyModel.write(new TinyModel.Options("qwen3_moe", shared.resolve("qwen3_moe"), 9, 32, 3, 4, 2, 64, null, 0, 0));
        TinyModel.write(new TinyModel.Options("mixtral", shared.resolve("mixtral"), 10, 32, 3, 4, 2, 64, null, 0, 0));
    }

    @ParameterizedTest(name = "{0} {1}")
    @CsvSource(delimiter = '|', value = {
            "llama | finetuning_type: full",
            "llama | finetuning_type: lora;lora_rank: 4;lora_dropout: 0.2;additional_target: lm_head",
            "llama | finetuning_type: freeze;freeze_trainable_layers: 1",
            "qwen3 | finetuning_type: full",
            "gemma2 | finetuning_type: full",
            "gemma2 | finetuning_type: freeze;freeze_trainable_layers: 1",
            "gemma3 | finetuning_type: lora;lora_rank: 4;lora_target: all",
            "phi3 | finetuning_type: lora;lora_rank: 4;lora_target: qkv_proj,gate_up_proj",
            "phi3 | finetuning_type: freeze;freeze_trainable_layers: 1",
            "qwen3_moe | finetuning_type: full",
            "mixtral | finetuning_type: lora;lora_rank: 4;lora_target: all",
            "llama | finetuning_type: full;neat_packing: true",
            "llama | finetuning_type: full;bf16: true"})
    void gradientsEqualThePlainBackward(String arch, String method) throws Exception {
        Path yaml = Files.writeString(shared.resolve(arch + method.hashCode() + ".yaml"), "model_name_or_path: "
                + shared.resolve(arch) + "\ntemplate: chatml\ndataset: x\noutput_dir: o\ndo_train: true\n"
                + method.replace(";", "\n") + "\n");
        SftConfig config = SftConfig.load(yaml, List.of());
        Map<String, float[]> plain = gradients(config, false);
        Map<String, float[]> checkpointed = gradients(config, true);
        if (arch.equals("qwen3_moe") || arch.equals("mixtral")) {   // the router term is there, in both
            Map<String, float[]> without = gradients(config, false, false);
            double change = 0;
            for (String name : plain.keySet()) {
                for (int i = 0; i < plain.get(name).length; i++) {
                    change = Math.max(change, Math.abs(plain.get(name)[i] - without.get(name)[i]));
                }
            }
            assertTrue(change > 1e-7, arch + ": the load-balancing term changes no gradient (" + change + ")");
        }
        double diff = 0;
        double largest = 0;
        for (String name : plain.keySet()) {
            float[] a = plain.get(name);
            float[] b = checkpointed.get(name);
            assertTrue(b != null, name + " has no gradient with checkpointing");
            for (int i = 0; i < a.length; i++) {
                diff = Math.max(diff, Math.abs(a[i] - b[i]));
                largest = Math.max(largest, Math.abs(a[i]));
            }
        }
        System.out.printf("checkpointing %s %-70s max |g - g_ckpt| / max |g| = %.2e over %d tensors%n", arch, method,
                diff / largest, plain.size());
        assertTrue(largest > 0, "no gradient at all");
        assertTrue(diff <= 1e-6 * largest, "gradients differ by " + diff + " (largest " + largest + ")");
    }

    /** The trainable tensors' gradients after two micro-batches (so dropout's generator moves on between them). */
    static Map<String, float[]> gradients(SftConfig config, boolean checkpointing) throws Exception {
        return gradients(config, checkpointing, true);
    }

    /** The gradients of 2 micro-batches; a mixture of experts adds its load-balancing term when {@code withAux}. */
    static Map<String, float[]> gradients(SftConfig config, boolean checkpointing, boolean withAux) throws Exception {
        try (PointerScope scope = new PointerScope()) {
            CausalLm model = Models.forTraining(config, Path.of(config.model().modelNameOrPath()), null, null, 0, CPU);
            TrainingSetup setup = TrainingSetup.of(config.training(), config.finetuning(), model, 8, World.single(),
                    checkpointing);
            Trainer.Training training = new Trainer.Training(model);
            dev.sparksft.model.MoeConfig moe = RouterAux.of(model);
            RouterAux aux = moe == null || !withAux ? null : new RouterAux(moe, 2);
            try (training) {
                for (int micro = 0; micro < 2; micro++) {
                    Batch b = batch(config.data().neatPacking(), 11 + micro, model.config().vocabSize());
                    long n = 0;
                    for (long l : labelsOf(b)) {
                        n += l;
                    }
                    if (checkpointing) {
                        ActivationCheckpointing.forwardBackward(model, b, null, setup.loss(), n, config.training().bf16(),
                                dev.sparksft.dist.Sharding.none(), null, 0, aux);
                    } else {
                        Trainer.plainForwardBackward(model, b, null, setup.loss(), n, config.training().bf16(), aux);
                    }
                }
            }
            Map<String, float[]> out = new LinkedHashMap<>();
            setup.trainable().forEach((name, p) -> {
                if (p.grad().defined()) {
                    out.put(name, ModelComparison.floats(p.grad().to(torch.ScalarType.Float)));
                }
            });
            return out;
        }
    }

    /** How many labelled targets each row has after the shift (one number per row). */
    static long[] labelsOf(Batch b) {
        Tensor valid = b.labels().narrow(1, 1, b.labels().size(1) - 1).ne(new org.bytedeco.pytorch.Scalar(-100));
        Tensor perRow = valid.sum(new long[] {1}, false, new org.bytedeco.pytorch.ScalarTypeOptional());
        long[] out = new long[(int) perRow.size(0)];
        for (int i = 0; i < out.length; i++) {
            out[i] = perRow.get(i).item_long();
        }
        return out;
    }

    /** Four random examples of 5..20 tokens, half of each labelled; packed into one row with neat packing. */
    static Batch batch(boolean neat, long seed, int vocab) {
        Random rng = new Random(seed);
        List<TokenizedExample> examples = new ArrayList<>();
        for (int e = 0; e < 4; e++) {
            int len = 5 + rng.nextInt(16);
            int[] ids = new int[len];
            int[] labels = new int[len];
            for (int i = 0; i < len; i++) {
                ids[i] = 3 + rng.nextInt(vocab - 3);
                labels[i] = i < len / 2 ? -100 : ids[i];
            }
            examples.add(new TokenizedExample(e, ids, labels));
        }
        if (neat) {
            examples = Packing.pack(examples, 128, true);
        }
        return Collator.rightPadded(examples, 0, Collator.PAD_TO_MULTIPLE_OF);
    }
}
