package dev.sparksft.config;

import java.util.Map;
import java.util.Set;

/**
 * LLaMA-Factory and Hugging Face TrainingArguments keys that spark-sft knows of but does not
 * implement yet (an error that says so, never a silent no-op), and the few keys that have no
 * meaning here and are accepted without effect.
 */
final class ConfigKeys {
    private ConfigKeys() {}

    static final Set<String> NOT_IMPLEMENTED = Set.of(
            // model
            "adapter_folder", "cache_dir", "use_fast_tokenizer", "resize_vocab",
            "split_special_tokens", "add_tokens", "add_special_tokens", "new_special_tokens_config",
            "init_special_tokens", "model_revision", "low_cpu_mem_usage", "rope_scaling", "flash_attn", "shift_attn",
            "mixture_of_depths", "use_unsloth", "use_unsloth_gc", "enable_liger_kernel", "moe_aux_loss_coef",
            "use_reentrant_gc", "upcast_layernorm", "upcast_lmhead_output",
            "train_from_scratch", "infer_backend", "offload_folder", "use_kv_cache", "infer_dtype",
            "print_param_status", "quantization_method", "quantization_bit", "quantization_type",
            "double_quantization", "quantization_device_map", "export_size", "export_device",
            "export_quantization_bit", "export_legacy_format", "compute_dtype", "device_map", "model_max_length",
            "block_diag_attn", "image_max_pixels", "image_min_pixels", "video_max_pixels", "video_min_pixels",
            "video_fps", "video_maxlen", "audio_sampling_rate", "vllm_maxlen", "vllm_gpu_util", "vllm_enforce_eager",
            // data
            "media_dir", "streaming", "buffer_size", "mix_strategy", "interleave_probs", "preprocessing_batch_size",
            "eval_num_beams", "ignore_pad_token_for_loss", "eval_on_each_dataset", "data_shared_file_system",
            // finetuning
            "use_dora", "pissa_init", "pissa_iter", "pissa_convert",
            "create_new_adapter", "use_llama_pro", "use_asft_loss", "asft_alpha",
            "early_stopping_steps", "include_effective_tokens_per_second",
            // Hugging Face (Seq2Seq)TrainingArguments
            "logging_dir", "logging_first_step", "save_only_model", "data_seed", "fp16", "tf32",
            "evaluation_strategy", "load_best_model_at_end", "metric_for_best_model", "run_name",
            "generation_max_length", "generation_num_beams",
            "fsdp", "label_smoothing_factor", "torch_compile", "include_num_input_tokens_seen",
            "remove_unused_columns", "neftune_noise_alpha");

    /** Accepted and ignored, with the reason logged once. */
    static final Map<String, String> NO_EFFECT = Map.of(
            "trust_remote_code", "spark-sft runs no model code from the hub",
            "overwrite_cache", "tokenized data is not cached between runs",
            "preprocessing_num_workers", "tokenization parallelism comes from Spark tasks",
            "dataloader_num_workers", "batches are built in the training task",
            "report_to", "metrics are written to trainer_log.jsonl");
}
