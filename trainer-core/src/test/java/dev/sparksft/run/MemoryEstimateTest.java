package dev.sparksft.run;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparksft.config.SftConfig;
import dev.sparksft.model.ModelConfig;
import dev.sparksft.model.TinyModel;
import dev.sparksft.runtime.Torch;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The memory estimate against closed forms: a Llama of P parameters holds 4P bytes of float32
 * weights, 4P of gradients and 8P of AdamW state; pure_bf16 halves each; LoRA under bf16 holds
 * the base in bf16 (2P) and trains only the adapter; ZeRO-2 over 2 ranks shards gradients and
 * state; checkpointing keeps fewer activations than the plain backward.
 */
class MemoryEstimateTest {
    @TempDir
    static Path dir;
    static ModelConfig cfg;
    // hidden 32, 2 layers, 4 heads of 8, 2 kv heads, intermediate 64, vocab from the tokenizer
    static final long H = 32;
    static final long L = 2;
    static final long KV = 2 * 8;
    static final long I = 64;

    @BeforeAll
    static void model() throws Exception {
        Torch.load(1);
        TinyModel.write(new TinyModel.Options("llama", dir.resolve("m"), 0, 32, 2, 4, 2, 64, null, 0, 0));
        cfg = ModelConfig.load(dir.resolve("m"));
    }

    /** Llama's parameter count by hand: embedding, per layer (2 norms, q, k, v, o, 3 MLP), final norm, head. */
    static long params() {
        long v = cfg.vocabSize();
        return v * H + L * (2 * H + H * H + 2 * KV * H + H * H + 3 * H * I) + H + v * H;
    }

    static MemoryEstimate estimate(String extra) throws Exception {
        Path yaml = Files.writeString(dir.resolve(Math.abs(extra.hashCode()) + ".yaml"), "model_name_or_path: "
                + dir.resolve("m") + "\ntemplate: chatml\ndataset: x\noutput_dir: o\ndo_train: true\ncutoff_len: 128\n"
                + "per_device_train_batch_size: 2\n" + extra.replace(";", "\n") + "\n");
        return MemoryEstimate.of(SftConfig.load(yaml, List.of()), cfg);
    }

    @Test
    void fullAdamWInFloat32HoldsSixteenBytesPerParameter() throws Exception {
        long p = params();
        MemoryEstimate e = estimate("finetuning_type: full");
        assertEquals(4 * p, e.weights());
        assertEquals(4 * p, e.gradients());
        assertEquals(8 * p, e.optimizer());
        MemoryEstimate bf16 = estimate("finetuning_type: full;bf16: true");
        assertEquals(4 * p, bf16.weights(), "bf16 autocast keeps float32 masters for what trains");
        MemoryEstimate pure = estimate("finetuning_type: full;pure_bf16: true");
        assertEquals(2 * p, pure.weights());
        assertEquals(2 * p, pure.gradients());
        assertEquals(4 * p, pure.optimizer());
        assertEquals(0, estimate("finetuning_type: full;optim: sgd").optimizer());
    }

    @Test
    void loraUnderBf16HoldsTheBaseInBf16AndTrainsTheAdapterOnly() throws Exception {
        long p = params();
        long r = 4;
        // every layer linear: q (H -> H), k and v (H -> KV), o (H -> H), gate and up (H -> I), down (I -> H)
        long adapter = L * r * ((H + H) + 2 * (H + KV) + (H + H) + 2 * (H + I) + (I + H));
        MemoryEstimate e = estimate("finetuning_type: lora;lora_rank: 4;bf16: true");
        assertEquals(2 * p + 4 * adapter, e.weights());
        assertEquals(4 * adapter, e.gradients());
        assertEquals(8 * adapter, e.optimizer());
    }

    @Test
    void oftUnderBf16HoldsTheBaseInBf16AndTrainsItsRotationsOnly() throws Exception {
        long p = params();
        // oft_block_size 32: q, k, v, o, gate, up read H = 32 features (1 block), down reads I = 64 (2 blocks);
        // a block of 32 has 32 x 31 / 2 parameters (the scripts/sft run of LLaMA-Factory's example logs 7936)
        long block = 32 * 31 / 2;
        long adapter = L * (6 * block + 2 * block);
        assertEquals(7936, adapter);
        MemoryEstimate e = estimate("finetuning_type: oft;bf16: true");
        assertEquals(2 * p + 4 * adapter, e.weights());
        assertEquals(4 * adapter, e.gradients());
        assertEquals(8 * adapter, e.optimizer());
    }

    @Test
    void zeroTwoShardsGradientsAndStateAndCheckpointingSavesActivations() throws Exception {
        Path ds = Files.writeString(dir.resolve("ds_z2.json"), "{\"train_micro_batch_size_per_gpu\": \"auto\", "
                + "\"gradient_accumulation_steps\": \"auto\", \"zero_optimization\": {\"stage\": 2}}");
        MemoryEstimate one = estimate("finetuning_type: full");
        MemoryEstimate two = estimate("finetuning_type: full;world_size: 2;deepspeed: " + ds);
        assertEquals(one.weights(), two.weights(), "stage 2 keeps whole weights");
        double g = (double) two.gradients() / one.gradients();
        double o = (double) two.optimizer() / one.optimizer();
        assertTrue(g >= 0.5 && g < 0.65 && o >= 0.5 && o < 0.65, "shares " + g + ", " + o + " of the replicated");
        assertTrue(one.activations() < one.activationsWithout(), one.activations() + " vs " + one.activationsWithout());
        Path ds3 = Files.writeString(dir.resolve("ds_z3.json"), "{\"zero_optimization\": {\"stage\": 3}}");
        MemoryEstimate three = estimate("finetuning_type: full;world_size: 2;deepspeed: " + ds3);
        // half the weights with one rank, plus the largest group gathered whole (here the embedding and head)
        double w = (double) three.weights() / one.weights();
        assertTrue(w > 0.5 && w < 1, "stage 3 shards the weights (plus one gathered group): " + w);
        assertTrue(one.table().contains("| total |"), one.table());
        one.requireFits(one.total());   // fits exactly
        Exception e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> one.requireFits(1 << 20));
        String largest = one.activations() > one.optimizer() ? "activations" : "optimizer state";   // > weights, gradients
        assertTrue(e.getMessage().contains("the largest part is " + largest) && e.getMessage().contains("device_memory_gb"),
                e.getMessage());
    }

    @Test
    void asftAddsItsReferenceCopyOfWhatTrainsAndItsLogits() throws Exception {
        long p = params();
        long tokens = 2 * 128;
        long v = cfg.vocabSize();
        MemoryEstimate full = estimate("finetuning_type: full");
        MemoryEstimate asft = estimate("finetuning_type: full;use_asft_loss: true");
        assertEquals(4 * p + 4 * p, asft.weights(), "a float32 copy of every weight");
        assertEquals(full.gradients(), asft.gradients());
        assertEquals(full.optimizer(), asft.optimizer());
        assertEquals(full.activations() + tokens * v * 4 * 4, asft.activations(), "reference logits, log q, q, a KL temporary");
        assertEquals(4 * p + 2 * p, estimate("finetuning_type: full;bf16: true;use_asft_loss: true").weights(),
                "the copy in the compute dtype, bf16");
        assertEquals(estimate("finetuning_type: lora;bf16: true").weights(),
                estimate("finetuning_type: lora;bf16: true;use_asft_loss: true").weights(), "LoRA's reference shares the base");
        assertEquals(estimate("finetuning_type: lora;bf16: true;additional_target: embed_tokens").weights() + 2 * v * H,
                estimate("finetuning_type: lora;bf16: true;additional_target: embed_tokens;use_asft_loss: true").weights());
    }
}
