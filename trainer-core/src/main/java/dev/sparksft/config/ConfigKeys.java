package dev.sparksft.config;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The decided behaviour of every LLaMA-Factory and Hugging Face training key that no argument
 * record owns (the records' keys are implemented). A key here is either accepted without effect,
 * with the reason logged once, or refused with the capability spark-sft lacks and what to do
 * instead; a refused key set to LLaMA-Factory's default is accepted, since that asks for nothing
 * (LLaMA-Factory's example YAMLs write out many defaults, e.g. {@code use_kt: false}).
 * No LLaMA-Factory key is ever "unknown". The README's key table lists the same groups; a test
 * keeps the two in step.
 */
final class ConfigKeys {
    private static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory());

    /** A key's behaviour. */
    enum Kind { NO_EFFECT, REFUSED }

    /**
     * @param reason       NO_EFFECT: why nothing changes; REFUSED: the missing capability and the fix
     * @param defaultValue REFUSED: LLaMA-Factory's (or Hugging Face's) default, which is accepted; null node if none
     */
    record Decision(String key, Kind kind, String reason, JsonNode defaultValue) {
        /** Whether {@code value} asks for nothing beyond the default (numbers compared by value). */
        boolean isDefault(JsonNode value) {
            if (defaultValue == null) {
                return false;
            }
            boolean unset = value == null || value.isNull() || (value.isTextual() && value.asText().isEmpty());
            boolean defaultUnset = defaultValue.isNull() || (defaultValue.isTextual() && defaultValue.asText().isEmpty());
            if (unset || defaultUnset) {
                return unset && defaultUnset;
            }
            if (value.isNumber() && defaultValue.isNumber()) {
                return value.asDouble() == defaultValue.asDouble();
            }
            return value.asText().equalsIgnoreCase(defaultValue.asText());
        }
    }

    static final String QUANTIZATION = "exporting a quantized model (GPTQ through optimum and gptqmodel, with its "
            + "calibration dataset) is not implemented; export in the model's dtype (scripts/sft export), and train "
            + "over 4-bit weights with quantization_bit: 4";
    static final String MULTIMODAL = "videos and audio are not supported yet (images are, with template: qwen2_vl); "
            + "remove the video and audio keys";
    static final String PREFERENCE = "spark-sft trains stage: sft only: preference and reinforcement training "
            + "(DPO, KTO, ORPO, SimPO, PPO, reward models) is not supported";
    static final String MEGATRON = "Megatron-Core training (tensor, pipeline, expert and context parallelism) is "
            + "not spark-sft's backend: spark-sft shards with ZeRO across Spark ranks (world_size, and deepspeed: a "
            + "ZeRO config); remove the Megatron keys";
    static final String HYPER_PARALLEL = "the HyperParallel backend (FSDP/TP) is not spark-sft's: spark-sft shards "
            + "with ZeRO across Spark ranks (deepspeed: a ZeRO-3 config shards like FSDP full_shard)";
    static final String FSDP = "spark-sft does not run FSDP: it shards with ZeRO across Spark ranks; set deepspeed: "
            + "a ZeRO-3 config (the same memory per rank as FSDP full_shard) and world_size";
    static final String RAY = "spark-sft distributes with Spark, not Ray: set world_size (the number of ranks) and "
            + "run scripts/spark-sft";
    static final String KTRANSFORMERS = "KTransformers' CPU offload of MoE experts (its AMX and int8 expert "
            + "kernels) is not part of spark-sft: train on GPU ranks with ZeRO-3 or LoRA instead";
    static final String EVAL_COMMAND = "LLaMA-Factory's eval command (MMLU, CMMLU, C-Eval) is not part of spark-sft: "
            + "do_eval computes the loss on eval_dataset, scripts/sft score the exact match of generated answers";
    static final String VOCABULARY = "new tokens are initialised with LLaMA-Factory's noise_init only (the mean of "
            + "the other rows plus noise): initialising them from descriptions (new_special_tokens_config, "
            + "init_special_tokens: desc_init) and splitting special tokens in text are not supported; add tokens "
            + "with add_tokens or add_special_tokens";
    static final String PROFILER = "LLaMA-Factory's torch profiler traces are not written; scripts/bench-train "
            + "measures the time of a training step";
    static final String MOE = "the override of a mixture-of-experts model's router_aux_loss_coef is not applied: "
            + "spark-sft weights the load-balancing loss with router_aux_loss_coef of the model's config.json; set it there";

    private static final Map<String, Decision> TABLE = new LinkedHashMap<>();

    static {
        // ---- accepted without effect
        noEffect("spark-sft runs no model code from the hub", "trust_remote_code");
        noEffect("tokenized data is not cached between runs (tokenized_path saves it)", "overwrite_cache",
                "preprocessing_batch_size");
        noEffect("the Spark job tokenizes in its tasks, one per partition; scripts/sft in its one process",
                "preprocessing_num_workers",
                "data_shared_file_system");
        noEffect("batches are built in the training task", "dataloader_num_workers");
        noEffect("metrics go to output_dir/trainer_log.jsonl and the driver's progress lines", "report_to", "run_name",
                "logging_dir", "use_swanlab", "swanlab_project", "swanlab_workspace", "swanlab_run_name", "swanlab_mode",
                "swanlab_api_key", "swanlab_logdir", "swanlab_lark_webhook_url", "swanlab_lark_secret",
                "include_effective_tokens_per_second", "include_num_input_tokens_seen", "print_param_status");
        noEffect("attention is libtorch's scaled_dot_product_attention (its fused kernel on GPU) whatever the "
                + "choice; the result is the same", "flash_attn");
        noEffect("CUDA kernel libraries: spark-sft runs libtorch's own kernels, with the same results",
                "use_unsloth", "use_unsloth_gc", "enable_liger_kernel", "use_v1_kernels");
        noEffect("activation checkpointing is spark-sft's own (per layer, with dropout replay); re-entrancy is a "
                + "detail of PyTorch's autograd", "use_reentrant_gc");
        noEffect("the decoder always uses its KV cache", "use_kv_cache");
        noEffect("prediction uses spark-sft's own decoder, not an inference engine", "infer_backend", "infer_dtype",
                "vllm_maxlen", "vllm_gpu_util", "vllm_enforce_eager", "vllm_max_lora_rank", "vllm_config",
                "sglang_maxlen", "sglang_mem_fraction", "sglang_tp_size", "sglang_config", "sglang_lora_backend");
        noEffect("spark-sft reads models and data from local or Hadoop paths only; hub tokens are never sent",
                "hf_hub_token", "ms_hub_token", "om_hub_token");
        noEffect("set by LLaMA-Factory's own parser, not by users: spark-sft derives it", "compute_dtype",
                "device_map", "model_max_length");
        noEffect("weights are loaded tensor by tensor, never offloaded to disk", "low_cpu_mem_usage", "offload_folder");
        noEffect("padding is never labelled: pads carry the ignore index", "ignore_pad_token_for_loss");
        noEffect("export writes on the CPU", "export_device");

        // Hugging Face TrainingArguments that change nothing spark-sft computes
        noEffect("activation checkpointing is spark-sft's own (per layer, with dropout replay)",
                "gradient_checkpointing_kwargs");
        noEffect("CUDA kernel libraries: spark-sft runs libtorch's own kernels, with the same results",
                "use_liger_kernel", "liger_kernel_config");
        noEffect("training never caches keys and values; generation always does", "use_cache");
        noEffect("libtorch's caching allocator is left to manage GPU memory", "torch_empty_cache_steps");
        noEffect("logging goes through the JVM's logger (conf/log4j2.properties under Spark); a non-finite loss "
                + "stops the run instead of being filtered", "log_on_each_node", "logging_nan_inf_filter", "log_level",
                "log_level_replica", "disable_tqdm", "project", "trackio_space_id", "skip_memory_metrics");
        noEffect("evaluation metrics are computed by spark-sft batch by batch", "eval_do_concat_batches",
                "eval_use_gather_object", "eval_accumulation_steps", "include_for_metrics", "batch_eval_metrics",
                "include_inputs_for_metrics", "use_legacy_prediction_loop", "past_index", "jit_mode_eval",
                "label_names", "length_column_name", "greater_is_better");
        noEffect("rank 0 writes output_dir (mirrored to any Hadoop path)", "save_on_each_node");
        noEffect("only meaningful with push_to_hub, which spark-sft refuses", "hub_token", "hub_private_repo",
                "hub_model_id", "hub_strategy", "hub_always_push", "hub_revision");
        noEffect("callbacks are spark-sft's own and keep no state", "restore_callback_states_from_checkpoint");
        noEffect("the data order and dropout derive from seed; kernels are libtorch's defaults", "full_determinism");
        noEffect("batches are built in the training task", "dataloader_pin_memory", "dataloader_persistent_workers",
                "dataloader_prefetch_factor");
        noEffect("gradients are reduced in spark-sft's own buckets over Gloo (cpu) or NCCL (cuda), chosen by device",
                "ddp_find_unused_parameters", "ddp_bucket_cap_mb", "ddp_broadcast_buffers", "ddp_backend");
        noEffect("ranks come from Spark's barrier tasks", "local_rank", "ray_scope", "dispatch_batches", "split_batches",
                "tpu_num_cores");
        noEffect("fp16 is refused, so its backend settings change nothing", "half_precision_backend", "fp16_backend",
                "fp16_opt_level");
        noEffect("spark-sft runs on libtorch's CPU or CUDA backends, without IPEX", "use_ipex");

        // ---- refused unless set to the default
        refuse(QUANTIZATION, "export_quantization_bit: null",
                "export_quantization_dataset: null", "export_quantization_nsamples: 128",
                "export_quantization_maxlen: 1024");
        refuse(MULTIMODAL, "video_max_pixels: 65536", "video_min_pixels: 256", "video_fps: 2.0", "video_maxlen: 128",
                "audio_sampling_rate: 16000", "use_audio_in_video: false");
        refuse("gemma3's pan-and-scan crops and InternVL's patch crops are not implemented: spark-sft's image "
                + "template is qwen2_vl, which takes whole images", "image_do_pan_and_scan: false",
                "crop_to_patches: false");
        refuse(PREFERENCE, "pref_beta: 0.1", "pref_ftx: 0.0", "pref_bco_weight: 0.0", "pref_loss: sigmoid",
                "dpo_label_smoothing: 0.0", "kto_chosen_weight: 1.0", "kto_rejected_weight: 1.0", "simpo_gamma: 0.5",
                "ppo_buffer_size: 1", "ppo_epochs: 4", "ppo_score_norm: false", "ppo_target: 6.0",
                "ppo_whiten_rewards: false", "ref_model: null", "ref_model_adapters: null",
                "ref_model_quantization_bit: null", "reward_model: null", "reward_model_adapters: null",
                "reward_model_quantization_bit: null", "reward_model_type: lora", "ld_alpha: null");
        refuse(MEGATRON, "use_mca: false", "use_megatron_bridge: false", "megatron_bridge_args: null",
                "tensor_model_parallel_size: 1", "pipeline_model_parallel_size: 1", "expert_model_parallel_size: 1",
                "context_parallel_size: 1", "virtual_pipeline_model_parallel_size: null", "sequence_parallel: false",
                "recompute_granularity: null", "recompute_method: null", "recompute_num_layers: null",
                "account_for_embedding_in_pipeline_split: null", "account_for_loss_in_pipeline_split: null",
                "bias_activation_fusion: null", "apply_rope_fusion: null", "masked_softmax_fusion: null",
                "cross_entropy_loss_fusion: null", "moe_grouped_gemm: null", "moe_token_dispatcher_type: null",
                "calculate_per_token_loss: null", "use_distributed_optimizer: true", "overlap_param_gather: true",
                "overlap_grad_reduce: true", "use_packed_sequences: false", "mixed_precision: bf16_mixed",
                "megatron_pretrained_checkpoint: null", "export_hf_on_finish: false", "extra_config: null");
        refuse(HYPER_PARALLEL, "use_hyper_parallel: false", "hyper_parallel_args: null", "hyper_parallel_cp_size: 1");
        refuse(FSDP, "fsdp: ''", "fsdp_config: null", "fsdp_transformer_layer_cls_to_wrap: null",
                "fp8_enable_fsdp_float8_all_gather: false");
        refuse(RAY, "ray_num_workers: 1", "ray_init_kwargs: null", "master_addr: null", "master_port: null");
        refuse(KTRANSFORMERS, "use_kt: false", "kt_cpu_activation: null", "kt_weight_path: null",
                "kt_non_expert_weight_path: null", "kt_expert_checkpoint_path: null", "kt_use_lora_experts: null",
                "kt_lora_expert_num: null", "kt_lora_expert_intermediate_size: null", "kt_config: null");
        refuse("create_new_adapter (merge adapter_name_or_path into the base, then train a new adapter) is not "
                + "implemented: merge it first (scripts/sft export), then train on the exported model",
                "create_new_adapter: false");
        refuse(EVAL_COMMAND, "task: null", "task_dir: evaluation", "batch_size: 4", "lang: en", "n_shot: 5",
                "save_dir: null", "download_mode: reuse_dataset_if_exists");
        refuse(VOCABULARY, "new_special_tokens_config: null", "init_special_tokens: noise_init",
                "split_special_tokens: false");
        refuse(PROFILER, "enable_torch_profiler: false", "profiler_output_dir: null", "profiler_wait_steps: 1",
                "profiler_warmup_steps: 1", "profiler_active_steps: 1", "profiler_repeat: 1",
                "profiler_record_shapes: true", "profiler_profile_memory: true", "profiler_with_stack: true",
                "profile_modules: null");
        refuse(MOE, "moe_aux_loss_coef: null");
        refuse("models are read from local or Hadoop paths only: download the model and point model_name_or_path at "
                + "its directory", "cache_dir: null", "model_revision: main", "adapter_folder: null");
        refuse("spark-sft loads fast tokenizers (tokenizer.json) only", "use_fast_tokenizer: true");
        refuse("RoPE scaling at training time (linear, dynamic, yarn, llama3) is not supported; a model's own "
                + "config.json rope_scaling is read as the model defines it", "rope_scaling: null");
        refuse("LongLoRA's shift short attention is not supported", "shift_attn: false");
        refuse("mixture-of-depths conversion is not supported", "mixture_of_depths: null");
        refuse("norms and the head are computed as the model's dtype policy says (bf16: float32 norms); a separate "
                + "upcast is not implemented", "upcast_layernorm: false", "upcast_lmhead_output: false");
        refuse("spark-sft fine-tunes a model's weights; scripts/sft make-tiny-model writes a random model",
                "train_from_scratch: false");
        refuse("block-diagonal attention for packed sequences (LLaMA-Factory's neat_packing) is not implemented; "
                + "packing: true trains packed rows with plain causal attention as LLaMA-Factory's packing does",
                "block_diag_attn: false");
        refuse("Spark reads every dataset in partitions; streaming is not needed and not implemented",
                "streaming: false", "buffer_size: 16384");
        refuse("datasets are concatenated; interleaving is not implemented", "mix_strategy: concat",
                "interleave_probs: null");
        refuse("beam search is not implemented: prediction decodes greedily or by sampling", "eval_num_beams: null",
                "generation_num_beams: null");
        refuse("evaluation reports one loss over all of eval_dataset", "eval_on_each_dataset: false");
        refuse("DoRA adapters are not supported: use finetuning_type: lora (use_rslora and loraplus_lr_ratio are)",
                "use_dora: false");
        refuse("early stopping is not implemented: set max_steps or num_train_epochs", "early_stopping_steps: null",
                "load_best_model_at_end: false", "metric_for_best_model: null");
        refuse("exported weights are written as safetensors only", "export_legacy_format: false");
        refuse("the exported directory is written locally: push it to a hub yourself", "export_hub_model_id: null");
        refuse("fp16 mixed precision needs loss scaling, which is not implemented: use bf16: true", "fp16: false");
        refuse("TF32 matmuls are not switched on: matmuls run at the dtype's full precision", "tf32: null");
        refuse("logging starts at step logging_steps", "logging_first_step: false");
        refuse("the data order comes from seed alone", "data_seed: null");
        refuse("evaluation_strategy is Hugging Face's old name: use eval_strategy", "evaluation_strategy: null");
        refuse("use max_new_tokens for the length of generated answers", "generation_max_length: null");
        refuse("label smoothing is not implemented", "label_smoothing_factor: 0.0");
        refuse("libtorch from Java has no torch.compile", "torch_compile: false");
        refuse("NEFTune embedding noise is not implemented", "neftune_noise_alpha: null");
        refuse("columns are chosen by dataset_info.json", "remove_unused_columns: true");
        refuse("the loss is always averaged over every rank's labelled tokens, which makes it exact",
                "average_tokens_across_devices: true");
        refuse("evaluation runs in the training's dtype policy (bf16: true autocasts it)", "bf16_full_eval: false");
        refuse("fp16 is not implemented: use bf16: true", "fp16_full_eval: false");
        refuse("libtorch from Java has no torch.compile", "torch_compile_backend: null", "torch_compile_mode: null",
                "torchdynamo: null");
        refuse("batch sizes are fixed: scripts/sft estimate says what fits in memory", "auto_find_batch_size: false");
        refuse("logging is every logging_steps", "logging_strategy: steps");
        refuse("evaluation runs every eval_steps (or each epoch) from the first step on", "eval_delay: 0",
                "eval_on_start: false");
        refuse("evaluation and prediction always report what do_eval and do_predict ask for",
                "prediction_loss_only: false");
        refuse("a preempted run resumes from its newest checkpoint (Spark retries the stage)",
                "enable_jit_checkpoint: false");
        refuse("models are written to output_dir only: push the directory to a hub yourself", "push_to_hub: false");
        refuse("a resume continues at the exact position in the data", "ignore_data_skip: false");
        refuse("set device: cpu (or cuda)", "use_cpu: false", "no_cuda: false", "use_mps_device: false");
        refuse("spark-sft does not use Accelerate: ranks come from Spark, sharding from deepspeed (ZeRO)",
                "accelerator_config: null", "parallelism_config: null");
        refuse("every example trains: the last partial batch is kept, which keeps the loss exact",
                "dataloader_drop_last: false");
        refuse("examples are shuffled by seed (disable_shuffling: true keeps the files' order)",
                "train_sampling_strategy: random", "group_by_length: false", "sortish_sampler: false");
        refuse("Hugging Face's debug features are not implemented", "debug: ''");
        refuse("generation settings are keys of this configuration (max_new_tokens, do_sample, temperature, ...)",
                "generation_config: null");
        refuse("optimizer settings are keys of their own (adam_beta1, galore_rank, ...)", "optim_args: null");
        refuse("GaLore and APOLLO name their modules with galore_target and apollo_target",
                "optim_target_modules: null");
        refuse("weights are always written as safetensors", "save_safetensors: true");
        refuse("Adafactor is not implemented: set optim to adamw_torch or sgd, or a custom optimizer",
                "adafactor: false");
    }

    private ConfigKeys() {}

    private static void noEffect(String why, String... keys) {
        for (String key : keys) {
            put(new Decision(key, Kind.NO_EFFECT, why, null));
        }
    }

    /** @param keysWithDefaults "key: default" in YAML */
    private static void refuse(String why, String... keysWithDefaults) {
        for (String entry : keysWithDefaults) {
            int colon = entry.indexOf(':');
            String key = entry.substring(0, colon).strip();
            JsonNode value;
            try {
                value = YAML.readTree("v: " + entry.substring(colon + 1).strip()).get("v");
            } catch (java.io.IOException e) {
                throw new IllegalStateException("the default of " + key + " is not YAML: " + entry, e);
            }
            put(new Decision(key, Kind.REFUSED, why, value));
        }
    }

    private static void put(Decision d) {
        if (TABLE.put(d.key(), d) != null) {
            throw new IllegalStateException(d.key() + " is decided twice");
        }
    }

    /** The decision for {@code key}, or null when the key is not in the table. */
    static Decision of(String key) {
        return TABLE.get(key);
    }

    /** Every decided key, in table order. */
    static Map<String, Decision> all() {
        return Collections.unmodifiableMap(TABLE);
    }
}
