#!/usr/bin/env python3
"""Independent float64 reference for the mixture-of-experts parity fixtures (qwen3_moe, mixtral).

Shares the safetensors writer, RMSNorm, RoPE and the loss with make_parity_fixtures.py and adds,
from transformers' Qwen3MoeSparseMoeBlock / MixtralSparseMoeBlock (4.x, per-expert weights):

  * router: logits = h @ gate.weight.T (experts x hidden), softmax over experts (float32 in HF,
    float64 here), top-k (num_experts_per_tok); Qwen3-MoE renormalises the k weights to sum 1
    when norm_topk_prob, Mixtral always; each token's output = sum_k weight_k * expert_k(h)
  * an expert is a SwiGLU MLP: down(silu(gate(h)) * up(h)); Qwen3-MoE names them
    mlp.experts.{e}.gate_proj/up_proj/down_proj (moe_intermediate_size), Mixtral
    block_sparse_moe.experts.{e}.w1 (gate) / w3 (up) / w2 (down) (intermediate_size)
  * Qwen3-MoE: layer i is sparse when i not in mlp_only_layers and (i + 1) % decoder_sparse_step
    == 0, otherwise a dense mlp.gate_proj/up_proj/down_proj of intermediate_size; qwen3's
    q_norm / k_norm attention with explicit head_dim
  * Mixtral: Mistral's attention with sliding_window
  * aux loss: transformers' load_balancing_loss_func over the sparse layers' router logits with
    the attention mask: E * sum_e (fraction of real tokens' top-k picks that chose e, per k
    slot) * (mean router probability of e over real tokens)

Run from the repository root:  python3 trainer-core/src/test/python/make_moe_fixtures.py
Needs only numpy.
"""
import json
import math
import os

import numpy as np

from make_parity_fixtures import (OUT, causal_lm_loss, inv_frequencies, quantize, rms_norm, rotate_half,
                                  save_model)


def sparse_layers(cfg):
    if cfg["model_type"] == "mixtral":
        return [True] * cfg["num_hidden_layers"]
    step, dense = cfg["decoder_sparse_step"], set(cfg["mlp_only_layers"])
    return [i not in dense and cfg["num_experts"] > 0 and (i + 1) % step == 0 for i in range(cfg["num_hidden_layers"])]


def names(cfg):
    """(module of the sparse block, expert leaves (gate, up, down), router key, expert count key)."""
    if cfg["model_type"] == "mixtral":
        return "block_sparse_moe", ("w1", "w3", "w2"), "num_local_experts"
    return "mlp", ("gate_proj", "up_proj", "down_proj"), "num_experts"


def swiglu(h, gate, up, down):
    g = h @ gate.T
    return (g / (1 + np.exp(-g)) * (h @ up.T)) @ down.T


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def top_k(probs, k):
    """Indices of the k largest per row, largest first (torch.topk's order), (tokens, k)."""
    return np.argsort(-probs, axis=-1, kind="stable")[:, :k]


def moe_block(cfg, w, p, h):
    """(tokens, hidden) -> (tokens, hidden) output and (tokens, experts) router logits."""
    block, (g, u, d), count_key = names(cfg)
    num_experts, k = cfg[count_key], cfg["num_experts_per_tok"]
    logits = h @ w[p + block + ".gate.weight"].T
    probs = softmax(logits)
    chosen = top_k(probs, k)
    weights = np.take_along_axis(probs, chosen, axis=-1)
    if cfg["model_type"] == "mixtral" or cfg["norm_topk_prob"]:
        weights = weights / weights.sum(axis=-1, keepdims=True)
    out = np.zeros_like(h)
    for e in range(num_experts):
        q = p + f"{block}.experts.{e}."
        tokens, slot = np.nonzero(chosen == e)
        if tokens.size:
            out[tokens] += swiglu(h[tokens], w[q + g + ".weight"], w[q + u + ".weight"],
                                  w[q + d + ".weight"]) * weights[tokens, slot][:, None]
    return out, logits


def forward(cfg, w, input_ids, attention_mask):
    """(batch, seq) ids -> (batch, seq, vocab) float64 logits and the sparse layers' router logits."""
    b, t = input_ids.shape
    n_heads, n_kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    head_dim = cfg.get("head_dim") or cfg["hidden_size"] // n_heads
    eps, arch = cfg["rms_norm_eps"], cfg["model_type"]
    freqs = np.outer(np.arange(t, dtype=np.float64), inv_frequencies(cfg, head_dim))
    emb = np.concatenate([freqs, freqs], axis=-1)
    cos, sin = np.cos(emb), np.sin(emb)
    causal = np.tril(np.ones((t, t), dtype=bool))
    window = cfg.get("sliding_window") if arch == "mixtral" else None
    if window:
        causal &= (np.arange(t)[:, None] - np.arange(t)[None, :]) < window
    allowed = causal[None] & (attention_mask[:, None, :] == 1)
    router_logits = []
    x = w["model.embed_tokens.weight"][input_ids]
    for i, sparse in enumerate(sparse_layers(cfg)):
        p = f"model.layers.{i}."
        h = rms_norm(x, w[p + "input_layernorm.weight"], eps)
        q = (h @ w[p + "self_attn.q_proj.weight"].T).reshape(b, t, n_heads, head_dim).transpose(0, 2, 1, 3)
        k = (h @ w[p + "self_attn.k_proj.weight"].T).reshape(b, t, n_kv, head_dim).transpose(0, 2, 1, 3)
        v = (h @ w[p + "self_attn.v_proj.weight"].T).reshape(b, t, n_kv, head_dim).transpose(0, 2, 1, 3)
        if arch == "qwen3_moe":
            q = rms_norm(q, w[p + "self_attn.q_norm.weight"], eps)
            k = rms_norm(k, w[p + "self_attn.k_norm.weight"], eps)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = np.repeat(k, n_heads // n_kv, axis=1)
        v = np.repeat(v, n_heads // n_kv, axis=1)
        scores = np.where(allowed[:, None], q @ k.transpose(0, 1, 3, 2) / math.sqrt(head_dim), -np.inf)
        attn = (softmax(scores) @ v).transpose(0, 2, 1, 3).reshape(b, t, n_heads * head_dim)
        x = x + attn @ w[p + "self_attn.o_proj.weight"].T
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps).reshape(b * t, -1)
        if sparse:
            out, logits = moe_block(cfg, w, p, h)
            router_logits.append(logits)
        else:
            out = swiglu(h, w[p + "mlp.gate_proj.weight"], w[p + "mlp.up_proj.weight"], w[p + "mlp.down_proj.weight"])
        x = x + out.reshape(b, t, -1)
    x = rms_norm(x, w["model.norm.weight"], eps)
    head = w["model.embed_tokens.weight"] if cfg["tie_word_embeddings"] else w["lm_head.weight"]
    return x @ head.T, router_logits


def load_balancing_loss(router_logits, num_experts, k, attention_mask):
    """transformers' load_balancing_loss_func: layers concatenated, masked means over real tokens."""
    logits = np.concatenate(router_logits, axis=0)                       # (layers * batch * seq, E)
    probs = softmax(logits)
    chosen = top_k(probs, k)
    picks = np.eye(num_experts)[chosen]                                   # (tokens, k, E)
    real = np.tile(attention_mask.reshape(-1), len(router_logits)).astype(np.float64)  # (tokens)
    tokens_per_expert = (picks * real[:, None, None]).sum(axis=0) / real.sum()          # (k, E)
    prob_per_expert = (probs * real[:, None]).sum(axis=0) / real.sum()                  # (E)
    return float((tokens_per_expert * prob_per_expert[None]).sum() * num_experts)


def random_weights(cfg, rng):
    hidden, vocab = cfg["hidden_size"], cfg["vocab_size"]
    n_heads, n_kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    head_dim = cfg.get("head_dim") or hidden // n_heads
    block, (g, u, d), count_key = names(cfg)
    expert_inter = cfg["intermediate_size"] if cfg["model_type"] == "mixtral" else cfg["moe_intermediate_size"]
    w = {"model.embed_tokens.weight": rng.normal(0, 0.5, (vocab, hidden)),
         "model.norm.weight": 1 + rng.normal(0, 0.1, hidden)}
    if not cfg["tie_word_embeddings"]:
        w["lm_head.weight"] = rng.normal(0, 0.2, (vocab, hidden))
    for i, sparse in enumerate(sparse_layers(cfg)):
        p = f"model.layers.{i}."
        w[p + "input_layernorm.weight"] = 1 + rng.normal(0, 0.1, hidden)
        w[p + "post_attention_layernorm.weight"] = 1 + rng.normal(0, 0.1, hidden)
        w[p + "self_attn.q_proj.weight"] = rng.normal(0, 0.2, (n_heads * head_dim, hidden))
        w[p + "self_attn.k_proj.weight"] = rng.normal(0, 0.2, (n_kv * head_dim, hidden))
        w[p + "self_attn.v_proj.weight"] = rng.normal(0, 0.2, (n_kv * head_dim, hidden))
        w[p + "self_attn.o_proj.weight"] = rng.normal(0, 0.2, (hidden, n_heads * head_dim))
        if cfg["model_type"] == "qwen3_moe":
            w[p + "self_attn.q_norm.weight"] = 1 + rng.normal(0, 0.1, head_dim)
            w[p + "self_attn.k_norm.weight"] = 1 + rng.normal(0, 0.1, head_dim)
        if not sparse:
            inter = cfg["intermediate_size"]
            w[p + "mlp.gate_proj.weight"] = rng.normal(0, 0.2, (inter, hidden))
            w[p + "mlp.up_proj.weight"] = rng.normal(0, 0.2, (inter, hidden))
            w[p + "mlp.down_proj.weight"] = rng.normal(0, 0.2, (hidden, inter))
            continue
        w[p + block + ".gate.weight"] = rng.normal(0, 0.5, (cfg[count_key], hidden))   # the router
        for e in range(cfg[count_key]):
            q = p + f"{block}.experts.{e}."
            w[q + g + ".weight"] = rng.normal(0, 0.2, (expert_inter, hidden))
            w[q + u + ".weight"] = rng.normal(0, 0.2, (expert_inter, hidden))
            w[q + d + ".weight"] = rng.normal(0, 0.2, (hidden, expert_inter))
    return w


BASE = {"hidden_act": "silu", "rms_norm_eps": 1e-6, "max_position_embeddings": 256, "bos_token_id": 1,
        "eos_token_id": 2, "initializer_range": 0.02, "attention_dropout": 0.0, "output_router_logits": False,
        "router_aux_loss_coef": 0.001}

FIXTURES = {
    # 4 experts, top-2, renormalised; layer 1 dense through mlp_only_layers (intermediate 64 vs
    # the experts' 24); q/k norms, head_dim 16 != hidden / heads; two shards, BF16 storage
    "qwen3_moe": dict(config={"architectures": ["Qwen3MoeForCausalLM"], "model_type": "qwen3_moe",
                              "hidden_size": 32, "intermediate_size": 64, "moe_intermediate_size": 24,
                              "num_hidden_layers": 3, "num_attention_heads": 4, "num_key_value_heads": 2,
                              "head_dim": 16, "vocab_size": 96, "rope_theta": 1000000.0,
                              "tie_word_embeddings": False, "attention_bias": False, "num_experts": 4,
                              "num_experts_per_tok": 2, "norm_topk_prob": True, "decoder_sparse_step": 1,
                              "mlp_only_layers": [1], "use_sliding_window": False, "sliding_window": None,
                              "max_window_layers": 3},
                      dtype="BF16", shards=2, seed=11),
    # 5 experts, top-3 weights left as softmax probabilities (norm_topk_prob false), every second
    # layer sparse (decoder_sparse_step 2: layers 1, 3), tied, F32
    "qwen3_moe_unnormalised": dict(config={"architectures": ["Qwen3MoeForCausalLM"], "model_type": "qwen3_moe",
                                           "hidden_size": 32, "intermediate_size": 48, "moe_intermediate_size": 16,
                                           "num_hidden_layers": 4, "num_attention_heads": 4,
                                           "num_key_value_heads": 1, "head_dim": 8, "vocab_size": 80,
                                           "rope_theta": 1000000.0, "tie_word_embeddings": True,
                                           "attention_bias": False, "num_experts": 5, "num_experts_per_tok": 3,
                                           "norm_topk_prob": False, "decoder_sparse_step": 2,
                                           "mlp_only_layers": [], "use_sliding_window": False,
                                           "sliding_window": None, "max_window_layers": 4},
                                   dtype="F32", shards=1, seed=12),
    # 4 local experts, top-2 (always renormalised), GQA 4:2, sliding window 5 of 12, F16 storage
    "mixtral": dict(config={"architectures": ["MixtralForCausalLM"], "model_type": "mixtral",
                            "hidden_size": 32, "intermediate_size": 40, "num_hidden_layers": 2,
                            "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 96,
                            "rope_theta": 1000000.0, "tie_word_embeddings": False, "sliding_window": 5,
                            "num_local_experts": 4, "num_experts_per_tok": 2, "router_jitter_noise": 0.0},
                    dtype="F16", shards=1, seed=13),
}


def main():
    for name, spec in FIXTURES.items():
        cfg = dict(BASE, **spec["config"])
        dtype_name = {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}[spec["dtype"]]
        rng = np.random.default_rng(spec["seed"])
        stored = random_weights(cfg, rng)
        weights = {n: quantize(v, spec["dtype"]) for n, v in stored.items()}
        seq, vocab = 12, cfg["vocab_size"]
        input_ids = rng.integers(3, vocab, size=(2, seq))
        attention_mask = np.ones((2, seq), dtype=np.int64)
        attention_mask[1, 9:] = 0
        input_ids[1, 9:] = 0
        labels = input_ids.copy()
        labels[0, :3] = -100
        labels[1, :4] = -100
        labels[1, 9:] = -100

        logits, router_logits = forward(cfg, weights, input_ids, attention_mask)
        loss = causal_lm_loss(logits, labels)
        num_experts = cfg["num_local_experts"] if cfg["model_type"] == "mixtral" else cfg["num_experts"]
        aux = load_balancing_loss(router_logits, num_experts, cfg["num_experts_per_tok"], attention_mask)
        # the aux loss of each row alone (HF's per micro-batch value): the gradient-accumulation tests' figures
        aux_rows = [load_balancing_loss([r.reshape(2, seq, -1)[i] for r in router_logits], num_experts,
                                        cfg["num_experts_per_tok"], attention_mask[i:i + 1]) for i in range(2)]

        greedy = input_ids[0:1].copy()
        for _ in range(6):
            step, _ = forward(cfg, weights, greedy, np.ones_like(greedy))
            greedy = np.concatenate([greedy, [[int(np.argmax(step[0, -1]))]]], axis=1)

        directory = os.path.join(OUT, name)
        save_model(directory, stored, spec["dtype"], spec["shards"])
        with open(os.path.join(directory, "config.json"), "w") as f:
            json.dump(dict(cfg, torch_dtype=dtype_name, transformers_version="4.57.0"), f, indent=2)
        with open(os.path.join(directory, "expected.json"), "w") as f:
            json.dump({"input_ids": input_ids.tolist(), "attention_mask": attention_mask.tolist(),
                       "labels": labels.tolist(), "logits_shape": list(logits.shape),
                       "logits": [round(float(v), 10) for v in logits.reshape(-1)],
                       "loss": loss, "greedy_tokens": greedy[0, seq:].tolist(),
                       "aux_loss": aux, "aux_loss_rows": aux_rows}, f)
        print(f"{name}: loss {loss:.6f}, aux {aux:.6f} (rows {aux_rows[0]:.6f}, {aux_rows[1]:.6f}), "
              f"|logits| max {np.abs(logits).max():.3f}")
        print_routing_sensitivity(cfg, weights, input_ids, attention_mask, labels, loss)


def print_routing_sensitivity(cfg, weights, input_ids, attention_mask, labels, loss):
    """How much routing changes the loss: top-1 instead of top-k, and the other normalisation."""
    variants = [("num_experts_per_tok", 1)]
    if cfg["model_type"] == "qwen3_moe":
        variants.append(("norm_topk_prob", not cfg["norm_topk_prob"]))
    for key, value in variants:
        changed = causal_lm_loss(forward(dict(cfg, **{key: value}), weights, input_ids, attention_mask)[0], labels)
        print(f"    with {key}={value}: loss {changed:.6f} ({abs(changed - loss) / loss:.1e} relative)")


if __name__ == "__main__":
    main()
