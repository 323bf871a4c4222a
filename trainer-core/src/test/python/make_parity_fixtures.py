#!/usr/bin/env python3
"""Independent reference for the model parity tests.

Writes, for each architecture, a tiny randomly initialised Hugging Face model directory
(config.json + safetensors, hand-encoded) and `expected.json` holding the logits and the mean
causal-LM loss that the Hugging Face `transformers` modelling code would compute for a fixed
batch. The forward pass is written here from the HF semantics in float64 numpy, sharing no code
with the Java implementation:

  * RMSNorm: w * x / sqrt(mean(x^2) + eps)
  * RoPE (rotate_half layout): q*cos + rotate_half(q)*sin, inv_freq = theta^(-2i/d),
    with the `llama3` rope_scaling rule of transformers' `_compute_llama3_parameters`
  * attention: softmax(q k^T / sqrt(head_dim) + causal/padding mask) v, GQA by repeating kv heads;
    Mistral's sliding window hides keys more than sliding_window - 1 positions back
  * qwen2: q/k/v biases; qwen3: per-head RMSNorm of q and k before RoPE, explicit head_dim
  * MLP: down(silu(gate(x)) * up(x)); tied lm_head when tie_word_embeddings
  * loss: cross entropy of logits[:, :-1] against labels[:, 1:], ignoring -100, mean over tokens
  * Gemma 2 / Gemma 3 text (gemma_forward): embeddings times sqrt(hidden) as a float32 number,
    RMSNorm scaling by (1 + w), the four sandwich norms, GeGLU (tanh-approximated gelu), scores
    scaled by query_pre_attn_scalar^-0.5 and soft-capped tanh(s / cap) * cap, a per-layer choice of
    full or sliding attention (layer_types, or Gemma 2's every other layer, or Gemma 3's
    sliding_window_pattern), Gemma 3's q/k norms and its local RoPE base (rope_local_base_freq)
    on sliding layers with linear rope_scaling on global ones, soft-capped final logits.
    config.json is written as transformers' save_pretrained writes it: a gemma3 checkpoint's
    text_config holds only the keys that differ from Gemma3TextConfig's defaults, and its weights
    are named model.language_model.*
  * Phi-3 / Phi-4-mini (phi3_forward): q, k, v sliced in that order from the fused qkv_proj,
    gate and up the two halves of gate_up_proj (mlp = down(up * silu(gate))), no biases; RoPE on
    the first int(head_dim * partial_rotary_factor) dimensions of each head, the rest passed
    through; longrope (transformers' _compute_longrope_parameters and its dynamic update):
    inv_freq = 1 / (ext * theta^(2i/rotary_dim)) with ext = long_factor when the forward's largest
    position + 1 exceeds original_max_position_embeddings, else short_factor, and cos / sin times
    sqrt(1 + ln(s) / ln(original)) for s = max_position_embeddings / original > 1; Mistral's
    sliding window on every layer when sliding_window is set

Run from the repository root:  python3 trainer-core/src/test/python/make_parity_fixtures.py
Needs only numpy.
"""
import json
import math
import os
import struct

import numpy as np

OUT = os.path.join(os.path.dirname(__file__), "..", "resources", "parity")


# ----------------------------------------------------------------------------- safetensors

def to_bf16_bits(x32):
    """float32 -> bfloat16 bit patterns, round to nearest even (as torch does)."""
    bits = x32.astype(np.float32).view(np.uint32).astype(np.uint64)
    rounding = ((bits >> 16) & 1) + 0x7FFF
    return ((bits + rounding) >> 16).astype(np.uint16)


def from_bf16_bits(b16):
    return (b16.astype(np.uint32) << 16).view(np.float32)


def quantize(x, dtype):
    """The values the stored tensor really holds, as float64."""
    if dtype == "F32":
        return x.astype(np.float32).astype(np.float64)
    if dtype == "F16":
        return x.astype(np.float16).astype(np.float64)
    if dtype == "BF16":
        return from_bf16_bits(to_bf16_bits(x)).astype(np.float64)
    raise ValueError(dtype)


def encode(x, dtype):
    if dtype == "F32":
        return x.astype("<f4").tobytes()
    if dtype == "F16":
        return x.astype("<f2").tobytes()
    if dtype == "BF16":
        return to_bf16_bits(x).astype("<u2").tobytes()
    raise ValueError(dtype)


def write_safetensors(path, tensors, dtype):
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        data = encode(tensors[name], dtype)
        header[name] = {"dtype": dtype, "shape": list(tensors[name].shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header["__metadata__"] = {"format": "pt"}
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * ((8 - len(raw) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for b in blobs:
            f.write(b)


def save_model(directory, tensors, dtype, num_shards):
    os.makedirs(directory, exist_ok=True)
    for name in os.listdir(directory):
        if name.endswith(".safetensors") or name.endswith(".index.json"):
            os.remove(os.path.join(directory, name))
    if num_shards == 1:
        write_safetensors(os.path.join(directory, "model.safetensors"), tensors, dtype)
        return
    names = sorted(tensors)
    weight_map = {}
    for k in range(num_shards):
        shard = f"model-{k + 1:05d}-of-{num_shards:05d}.safetensors"
        part = {n: tensors[n] for n in names[k::num_shards]}
        write_safetensors(os.path.join(directory, shard), part, dtype)
        weight_map.update({n: shard for n in part})
    total = sum(v.size * (4 if dtype == "F32" else 2) for v in tensors.values())
    with open(os.path.join(directory, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)


# ----------------------------------------------------------------------------- reference forward

def rms_norm(x, w, eps):
    return w * (x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps))


def inv_frequencies(cfg, head_dim):
    theta = cfg.get("rope_theta", 10000.0)
    inv_freq = 1.0 / (theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim))
    scaling = cfg.get("rope_scaling")
    if scaling and scaling.get("rope_type", scaling.get("type")) == "llama3":
        factor = scaling["factor"]
        low, high = scaling["low_freq_factor"], scaling["high_freq_factor"]
        old_len = scaling["original_max_position_embeddings"]
        low_wavelen, high_wavelen = old_len / low, old_len / high
        wavelen = 2 * math.pi / inv_freq
        scaled = np.where(wavelen > low_wavelen, inv_freq / factor, inv_freq)
        smooth = (old_len / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = ~(wavelen < high_wavelen) & ~(wavelen > low_wavelen)
        inv_freq = np.where(medium, smoothed, scaled)
    return inv_freq


def rotate_half(x):
    half = x.shape[-1] // 2
    return np.concatenate([-x[..., half:], x[..., :half]], axis=-1)


def forward(cfg, w, input_ids, attention_mask):
    """(batch, seq) ids -> (batch, seq, vocab) logits, float64."""
    if cfg["model_type"] in ("gemma2", "gemma3_text"):
        return gemma_forward(cfg, w, input_ids, attention_mask)
    if cfg["model_type"] == "phi3":
        return phi3_forward(cfg, w, input_ids, attention_mask)
    b, t = input_ids.shape
    n_heads, n_kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    head_dim = cfg.get("head_dim") or cfg["hidden_size"] // n_heads
    eps = cfg["rms_norm_eps"]
    arch = cfg["model_type"]

    positions = np.arange(t, dtype=np.float64)
    freqs = np.outer(positions, inv_frequencies(cfg, head_dim))          # (seq, head_dim/2)
    emb = np.concatenate([freqs, freqs], axis=-1)
    cos, sin = np.cos(emb), np.sin(emb)                                  # (seq, head_dim)

    causal = np.tril(np.ones((t, t), dtype=bool))
    window = cfg.get("sliding_window") if arch == "mistral" else None
    if window:  # Mistral: query i sees keys j with i - j < sliding_window
        q_idx, k_idx = np.arange(t)[:, None], np.arange(t)[None, :]
        causal &= (q_idx - k_idx) < window
    allowed = causal[None, :, :] & (attention_mask[:, None, :] == 1)    # (batch, q, k)

    x = w["model.embed_tokens.weight"][input_ids]                        # (batch, seq, hidden)
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        h = rms_norm(x, w[p + "input_layernorm.weight"], eps)

        def proj(name):
            y = h @ w[p + f"self_attn.{name}.weight"].T
            if arch == "qwen2":
                y = y + w[p + f"self_attn.{name}.bias"]
            return y

        q = proj("q_proj").reshape(b, t, n_heads, head_dim).transpose(0, 2, 1, 3)
        k = proj("k_proj").reshape(b, t, n_kv, head_dim).transpose(0, 2, 1, 3)
        v = proj("v_proj").reshape(b, t, n_kv, head_dim).transpose(0, 2, 1, 3)
        if arch == "qwen3":
            q = rms_norm(q, w[p + "self_attn.q_norm.weight"], eps)
            k = rms_norm(k, w[p + "self_attn.k_norm.weight"], eps)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = n_heads // n_kv
        k = np.repeat(k, rep, axis=1)
        v = np.repeat(v, rep, axis=1)
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(head_dim)        # (batch, heads, q, k)
        scores = np.where(allowed[:, None, :, :], scores, -np.inf)
        scores = scores - scores.max(axis=-1, keepdims=True)
        probs = np.exp(scores)
        probs = probs / probs.sum(axis=-1, keepdims=True)
        attn = (probs @ v).transpose(0, 2, 1, 3).reshape(b, t, n_heads * head_dim)
        x = x + attn @ w[p + "self_attn.o_proj.weight"].T

        h = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        gate = h @ w[p + "mlp.gate_proj.weight"].T
        up = h @ w[p + "mlp.up_proj.weight"].T
        x = x + (gate / (1 + np.exp(-gate)) * up) @ w[p + "mlp.down_proj.weight"].T

    x = rms_norm(x, w["model.norm.weight"], eps)
    head = w["model.embed_tokens.weight"] if cfg["tie_word_embeddings"] else w["lm_head.weight"]
    return x @ head.T


def gemma_norm(x, w, eps):
    """Gemma's RMSNorm: the weight is stored as the offset from 1."""
    return (x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps)) * (1.0 + w)


def gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def soft_cap(x, cap):
    return np.tanh(x / cap) * cap if cap else x


def gemma_layer_types(cfg):
    if cfg.get("layer_types"):
        return cfg["layer_types"]
    n = cfg["num_hidden_layers"]
    pattern = 2 if cfg["model_type"] == "gemma2" else cfg["sliding_window_pattern"]
    return ["sliding_attention" if (i + 1) % pattern else "full_attention" for i in range(n)]


def rope_angles(theta, head_dim, t, linear_factor=None):
    inv_freq = 1.0 / (theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim))
    if linear_factor:
        inv_freq = inv_freq / linear_factor
    freqs = np.outer(np.arange(t, dtype=np.float64), inv_freq)
    emb = np.concatenate([freqs, freqs], axis=-1)
    return np.cos(emb), np.sin(emb)                                      # (seq, head_dim)


def gemma_forward(cfg, w, input_ids, attention_mask, prefix="model."):
    """Gemma2ForCausalLM / Gemma3ForCausalLM on a full text config (every key explicit)."""
    b, t = input_ids.shape
    n_heads, n_kv, head_dim = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
    eps, gemma3 = cfg["rms_norm_eps"], cfg["model_type"] == "gemma3_text"
    scaling = cfg["query_pre_attn_scalar"] ** -0.5
    scaled = cfg.get("rope_scaling") or {}
    global_rope = rope_angles(cfg["rope_theta"], head_dim, t,
                              scaled.get("factor") if scaled.get("rope_type") == "linear" else None)
    local_rope = rope_angles(cfg["rope_local_base_freq"], head_dim, t) if gemma3 else global_rope

    q_idx, k_idx = np.arange(t)[:, None], np.arange(t)[None, :]
    full = (k_idx <= q_idx)[None] & (attention_mask[:, None, :] == 1)             # (batch, q, k)
    sliding = full & ((q_idx - k_idx) < cfg["sliding_window"])[None]

    x = w[prefix + "embed_tokens.weight"][input_ids] * float(np.float32(math.sqrt(cfg["hidden_size"])))
    for i, kind in enumerate(gemma_layer_types(cfg)):
        p = f"{prefix}layers.{i}."
        cos, sin = local_rope if kind == "sliding_attention" else global_rope
        allowed = sliding if kind == "sliding_attention" else full
        h = gemma_norm(x, w[p + "input_layernorm.weight"], eps)
        q = (h @ w[p + "self_attn.q_proj.weight"].T).reshape(b, t, n_heads, head_dim).transpose(0, 2, 1, 3)
        k = (h @ w[p + "self_attn.k_proj.weight"].T).reshape(b, t, n_kv, head_dim).transpose(0, 2, 1, 3)
        v = (h @ w[p + "self_attn.v_proj.weight"].T).reshape(b, t, n_kv, head_dim).transpose(0, 2, 1, 3)
        if gemma3:
            q = gemma_norm(q, w[p + "self_attn.q_norm.weight"], eps)
            k = gemma_norm(k, w[p + "self_attn.k_norm.weight"], eps)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = np.repeat(k, n_heads // n_kv, axis=1)
        v = np.repeat(v, n_heads // n_kv, axis=1)
        scores = soft_cap(q @ k.transpose(0, 1, 3, 2) * scaling, cfg.get("attn_logit_softcapping"))
        scores = np.where(allowed[:, None, :, :], scores, -np.inf)
        probs = np.exp(scores - scores.max(axis=-1, keepdims=True))
        probs = probs / probs.sum(axis=-1, keepdims=True)
        attn = (probs @ v).transpose(0, 2, 1, 3).reshape(b, t, n_heads * head_dim)
        x = x + gemma_norm(attn @ w[p + "self_attn.o_proj.weight"].T, w[p + "post_attention_layernorm.weight"], eps)

        h = gemma_norm(x, w[p + "pre_feedforward_layernorm.weight"], eps)
        mlp = (gelu_tanh(h @ w[p + "mlp.gate_proj.weight"].T) * (h @ w[p + "mlp.up_proj.weight"].T)) \
            @ w[p + "mlp.down_proj.weight"].T
        x = x + gemma_norm(mlp, w[p + "post_feedforward_layernorm.weight"], eps)

    x = gemma_norm(x, w[prefix + "norm.weight"], eps)
    head = w[prefix + "embed_tokens.weight"] if cfg["tie_word_embeddings"] else w["lm_head.weight"]
    return soft_cap(x @ head.T, cfg.get("final_logit_softcapping"))


def phi3_rope(cfg, head_dim, t):
    """cos, sin (seq, rotary_dim) of positions 0..t-1 as Phi3RotaryEmbedding computes them."""
    dim = int(head_dim * cfg.get("partial_rotary_factor", 1.0))
    exponents = np.arange(0, dim, 2, dtype=np.float64) / dim
    scaling, attention = cfg.get("rope_scaling"), 1.0
    if scaling and scaling.get("rope_type", scaling.get("type")) == "longrope":
        original = cfg["original_max_position_embeddings"]
        ext = np.array(scaling["long_factor"] if t > original else scaling["short_factor"], dtype=np.float64)
        inv_freq = 1.0 / (ext * cfg["rope_theta"] ** exponents)
        s = cfg["max_position_embeddings"] / original
        attention = scaling.get("attention_factor") or (math.sqrt(1 + math.log(s) / math.log(original)) if s > 1 else 1.0)
    else:
        inv_freq = 1.0 / (cfg["rope_theta"] ** exponents)
    freqs = np.outer(np.arange(t, dtype=np.float64), inv_freq)
    emb = np.concatenate([freqs, freqs], axis=-1)
    return np.cos(emb) * attention, np.sin(emb) * attention


def phi3_forward(cfg, w, input_ids, attention_mask):
    """Phi3ForCausalLM, float64."""
    b, t = input_ids.shape
    n_heads, n_kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    head_dim = cfg.get("head_dim") or cfg["hidden_size"] // n_heads
    inter, eps = cfg["intermediate_size"], cfg["rms_norm_eps"]
    cos, sin = phi3_rope(cfg, head_dim, t)
    rot = cos.shape[-1]

    def rope(x):
        turned, rest = x[..., :rot], x[..., rot:]
        return np.concatenate([turned * cos + rotate_half(turned) * sin, rest], axis=-1)

    q_idx, k_idx = np.arange(t)[:, None], np.arange(t)[None, :]
    causal = k_idx <= q_idx
    if cfg.get("sliding_window"):
        causal = causal & ((q_idx - k_idx) < cfg["sliding_window"])
    allowed = causal[None] & (attention_mask[:, None, :] == 1)            # (batch, q, k)

    x = w["model.embed_tokens.weight"][input_ids]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        h = rms_norm(x, w[p + "input_layernorm.weight"], eps)
        qkv = h @ w[p + "self_attn.qkv_proj.weight"].T                      # (batch, seq, (heads + 2 kv) * d)
        nq, nk = n_heads * head_dim, n_kv * head_dim
        q = qkv[..., :nq].reshape(b, t, n_heads, head_dim).transpose(0, 2, 1, 3)
        k = qkv[..., nq:nq + nk].reshape(b, t, n_kv, head_dim).transpose(0, 2, 1, 3)
        v = qkv[..., nq + nk:].reshape(b, t, n_kv, head_dim).transpose(0, 2, 1, 3)
        q, k = rope(q), rope(k)
        k = np.repeat(k, n_heads // n_kv, axis=1)
        v = np.repeat(v, n_heads // n_kv, axis=1)
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(head_dim)
        scores = np.where(allowed[:, None, :, :], scores, -np.inf)
        probs = np.exp(scores - scores.max(axis=-1, keepdims=True))
        probs = probs / probs.sum(axis=-1, keepdims=True)
        attn = (probs @ v).transpose(0, 2, 1, 3).reshape(b, t, nq)
        x = x + attn @ w[p + "self_attn.o_proj.weight"].T

        h = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        gate_up = h @ w[p + "mlp.gate_up_proj.weight"].T                    # (batch, seq, 2 * inter)
        gate, up = gate_up[..., :inter], gate_up[..., inter:]
        x = x + (up * (gate / (1 + np.exp(-gate)))) @ w[p + "mlp.down_proj.weight"].T

    x = rms_norm(x, w["model.norm.weight"], eps)
    head = w["model.embed_tokens.weight"] if cfg["tie_word_embeddings"] else w["lm_head.weight"]
    return x @ head.T


def phi3_weights(cfg, rng):
    hidden, inter, vocab = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    n_heads, n_kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    head_dim = cfg.get("head_dim") or hidden // n_heads
    w = {"model.embed_tokens.weight": rng.normal(0, 0.5, (vocab, hidden)),
         "model.norm.weight": 1 + rng.normal(0, 0.1, hidden)}
    if not cfg["tie_word_embeddings"]:
        w["lm_head.weight"] = rng.normal(0, 0.2, (vocab, hidden))
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        w[p + "input_layernorm.weight"] = 1 + rng.normal(0, 0.1, hidden)
        w[p + "post_attention_layernorm.weight"] = 1 + rng.normal(0, 0.1, hidden)
        w[p + "self_attn.qkv_proj.weight"] = rng.normal(0, 0.2, ((n_heads + 2 * n_kv) * head_dim, hidden))
        w[p + "self_attn.o_proj.weight"] = rng.normal(0, 0.2, (hidden, n_heads * head_dim))
        w[p + "mlp.gate_up_proj.weight"] = rng.normal(0, 0.2, (2 * inter, hidden))
        w[p + "mlp.down_proj.weight"] = rng.normal(0, 0.2, (hidden, inter))
    return w


def causal_lm_loss(logits, labels):
    shift_logits, shift_labels = logits[:, :-1], labels[:, 1:]
    total, count = 0.0, 0
    for bi in range(shift_labels.shape[0]):
        for ti in range(shift_labels.shape[1]):
            y = shift_labels[bi, ti]
            if y == -100:
                continue
            row = shift_logits[bi, ti]
            m = row.max()
            total += m + math.log(np.exp(row - m).sum()) - row[y]
            count += 1
    return total / count


# ----------------------------------------------------------------------------- fixtures

def random_weights(cfg, rng):
    hidden, inter, vocab = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    n_heads, n_kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    head_dim = cfg.get("head_dim") or hidden // n_heads
    arch = cfg["model_type"]
    gemma = arch in ("gemma2", "gemma3_text")
    norm_one = 0 if gemma else 1        # Gemma stores its norm weights as the offset from 1
    w = {"model.embed_tokens.weight": rng.normal(0, 0.5, (vocab, hidden)),
         "model.norm.weight": norm_one + rng.normal(0, 0.1, hidden)}
    if not cfg["tie_word_embeddings"]:
        w["lm_head.weight"] = rng.normal(0, 0.2, (vocab, hidden))
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        w[p + "input_layernorm.weight"] = norm_one + rng.normal(0, 0.1, hidden)
        w[p + "post_attention_layernorm.weight"] = norm_one + rng.normal(0, 0.1, hidden)
        if gemma:
            w[p + "pre_feedforward_layernorm.weight"] = rng.normal(0, 0.1, hidden)
            w[p + "post_feedforward_layernorm.weight"] = rng.normal(0, 0.1, hidden)
        w[p + "self_attn.q_proj.weight"] = rng.normal(0, 0.2, (n_heads * head_dim, hidden))
        w[p + "self_attn.k_proj.weight"] = rng.normal(0, 0.2, (n_kv * head_dim, hidden))
        w[p + "self_attn.v_proj.weight"] = rng.normal(0, 0.2, (n_kv * head_dim, hidden))
        w[p + "self_attn.o_proj.weight"] = rng.normal(0, 0.2, (hidden, n_heads * head_dim))
        if arch == "qwen2":
            w[p + "self_attn.q_proj.bias"] = rng.normal(0, 0.1, n_heads * head_dim)
            w[p + "self_attn.k_proj.bias"] = rng.normal(0, 0.1, n_kv * head_dim)
            w[p + "self_attn.v_proj.bias"] = rng.normal(0, 0.1, n_kv * head_dim)
        if arch in ("qwen3", "gemma3_text"):
            w[p + "self_attn.q_norm.weight"] = norm_one + rng.normal(0, 0.1, head_dim)
            w[p + "self_attn.k_norm.weight"] = norm_one + rng.normal(0, 0.1, head_dim)
        w[p + "mlp.gate_proj.weight"] = rng.normal(0, 0.2, (inter, hidden))
        w[p + "mlp.up_proj.weight"] = rng.normal(0, 0.2, (inter, hidden))
        w[p + "mlp.down_proj.weight"] = rng.normal(0, 0.2, (hidden, inter))
    return w


BASE = {"hidden_act": "silu", "rms_norm_eps": 1e-6, "max_position_embeddings": 256,
        "bos_token_id": 1, "eos_token_id": 2, "initializer_range": 0.02, "attention_dropout": 0.0}

FIXTURES = {
    # GQA 4:2, llama3 rope scaling with one frequency in each band, two shards, F32
    "llama": dict(config={"architectures": ["LlamaForCausalLM"], "model_type": "llama",
                          "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                          "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 96,
                          "rope_theta": 500000.0, "tie_word_embeddings": False,
                          "attention_bias": False, "mlp_bias": False,
                          "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                           "high_freq_factor": 4.0, "original_max_position_embeddings": 256}},
                  dtype="F32", shards=2, seed=1),
    # multi-query attention (1 kv head), a sliding window shorter than the sequence, F16 storage
    "mistral": dict(config={"architectures": ["MistralForCausalLM"], "model_type": "mistral",
                            "hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 2,
                            "num_attention_heads": 4, "num_key_value_heads": 1, "vocab_size": 80,
                            "rope_theta": 10000.0, "tie_word_embeddings": False, "sliding_window": 5},
                    dtype="F16", shards=1, seed=2),
    # q/k/v biases, tied embeddings
    "qwen2": dict(config={"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2",
                          "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                          "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 96,
                          "rope_theta": 1000000.0, "tie_word_embeddings": True,
                          "use_sliding_window": False},
                  dtype="F32", shards=1, seed=3),
    # explicit head_dim (16, so heads*head_dim != hidden), q/k norms, tied, BF16 storage
    "qwen3": dict(config={"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3",
                          "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                          "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
                          "vocab_size": 96, "rope_theta": 1000000.0, "tie_word_embeddings": True,
                          "attention_bias": False},
                  dtype="BF16", shards=1, seed=4),
}

# Gemma: every text-model key explicit here (the model the reference runs); what config.json holds
# is derived from it by saved_config, as transformers' save_pretrained writes it. Soft-caps small
# enough (0.5 to 3.0) and windows short enough (4, 5 of 12 positions) to change the result.
GEMMA_BASE = {"hidden_activation": "gelu_pytorch_tanh", "rms_norm_eps": 1e-6, "max_position_embeddings": 256,
              "pad_token_id": 0, "eos_token_id": 1, "bos_token_id": 2, "initializer_range": 0.02,
              "attention_dropout": 0.0, "attention_bias": False, "use_cache": True, "cache_implementation": "hybrid"}

# Gemma3TextConfig's defaults: a nested text_config is saved as its difference from them.
GEMMA3_TEXT_DEFAULTS = {
    "vocab_size": 262208, "hidden_size": 2304, "intermediate_size": 9216, "num_hidden_layers": 26,
    "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 256, "hidden_activation": "gelu_pytorch_tanh",
    "max_position_embeddings": 131072, "initializer_range": 0.02, "rms_norm_eps": 1e-6, "use_cache": True,
    "pad_token_id": 0, "eos_token_id": 1, "bos_token_id": 2, "tie_word_embeddings": True, "rope_theta": 1000000.0,
    "attention_bias": False, "attention_dropout": 0.0, "query_pre_attn_scalar": 256, "sliding_window": 4096,
    "final_logit_softcapping": None, "attn_logit_softcapping": None, "cache_implementation": "hybrid",
    "rope_scaling": None, "rope_local_base_freq": 10000.0, "use_bidirectional_attention": False}

GEMMA_FIXTURES = {
    # soft-capped scores (0.5) and logits (3.0), layer 0 sliding (window 4) and layer 1 full as
    # transformers >= 4.53 writes layer_types, head_dim 16 != hidden / heads, query_pre_attn_scalar 24
    # != head_dim, tied, BF16 storage
    "gemma2": dict(config={"architectures": ["Gemma2ForCausalLM"], "model_type": "gemma2",
                           "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                           "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
                           "vocab_size": 96, "rope_theta": 10000.0, "query_pre_attn_scalar": 24,
                           "sliding_window": 4, "final_logit_softcapping": 3.0, "attn_logit_softcapping": 0.5,
                           "layer_types": ["sliding_attention", "full_attention"], "tie_word_embeddings": True},
                   dtype="BF16", shards=1, seed=5),
    # Gemma 3's text model as Google's configs state the pattern (sliding_window_pattern 3: layers
    # 0, 1 sliding, 2 full), multi-query attention, local RoPE base vs global with linear scaling,
    # soft-capped scores, an untied head, F16 storage
    "gemma3_text": dict(config={"architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text",
                                "hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 3,
                                "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 8,
                                "vocab_size": 80, "rope_theta": 1000000.0, "rope_local_base_freq": 10000.0,
                                "rope_scaling": {"rope_type": "linear", "factor": 4.0},
                                "query_pre_attn_scalar": 8, "sliding_window": 4, "sliding_window_pattern": 3,
                                "final_logit_softcapping": None, "attn_logit_softcapping": 2.0,
                                "use_bidirectional_attention": False, "tie_word_embeddings": False},
                        dtype="F16", shards=1, seed=6),
    # an image-text checkpoint's text model: config under text_config (only the keys that differ
    # from the defaults), weights under model.language_model.*, two shards, no caps (the fused
    # attention path), window 5, tied, F32
    "gemma3": dict(config={"model_type": "gemma3_text", "hidden_size": 32, "intermediate_size": 64,
                           "num_hidden_layers": 3, "num_attention_heads": 4, "num_key_value_heads": 2,
                           "head_dim": 16, "vocab_size": 96, "rope_theta": 1000000.0,
                           "rope_local_base_freq": 10000.0, "rope_scaling": {"rope_type": "linear", "factor": 8.0},
                           "query_pre_attn_scalar": 16, "sliding_window": 5,
                           "layer_types": ["sliding_attention", "full_attention", "sliding_attention"],
                           "final_logit_softcapping": None, "attn_logit_softcapping": None,
                           "use_bidirectional_attention": False, "tie_word_embeddings": True},
                   dtype="F32", shards=2, seed=7, composite=True),
}


PHI3_BASE = {"hidden_act": "silu", "rms_norm_eps": 1e-5, "bos_token_id": 1, "eos_token_id": 2,
             "pad_token_id": 0, "initializer_range": 0.02, "attention_dropout": 0.0, "resid_pdrop": 0.0,
             "embd_pdrop": 0.0, "use_cache": True}

PHI3_FIXTURES = {
    # Phi-3 (mini/medium layout): fused qkv_proj and gate_up_proj, GQA 4:2, full rotary without
    # scaling, a sliding window (5) shorter than the sequence, untied, two shards, F16 storage
    "phi3": dict(config={"architectures": ["Phi3ForCausalLM"], "model_type": "phi3",
                         "hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 2,
                         "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 96,
                         "rope_theta": 10000.0, "max_position_embeddings": 256,
                         "original_max_position_embeddings": 256, "partial_rotary_factor": 1.0,
                         "rope_scaling": None, "sliding_window": 5, "tie_word_embeddings": False},
                 dtype="F16", shards=2, seed=8),
    # Phi-4-mini's layout: partial_rotary_factor 0.75 (12 of head_dim 16 rotated), longrope with
    # original_max_position_embeddings 8 < 12 so the long factors apply (max 64: attention factor
    # sqrt(2)), no window, tied, F32; expected.json also holds an 8-token prefix's logits, where
    # the short factors apply
    "phi4_mini": dict(config={"architectures": ["Phi3ForCausalLM"], "model_type": "phi3",
                              "hidden_size": 64, "intermediate_size": 64, "num_hidden_layers": 2,
                              "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 96,
                              "rope_theta": 10000.0, "max_position_embeddings": 64,
                              "original_max_position_embeddings": 8, "partial_rotary_factor": 0.75,
                              "rope_scaling": {"type": "longrope",
                                               "short_factor": [1.0, 1.1, 1.3, 1.7, 2.5, 4.0],
                                               "long_factor": [1.0, 1.5, 3.0, 6.0, 12.0, 24.0]},
                              "sliding_window": None, "tie_word_embeddings": True},
                      dtype="F32", shards=1, seed=9),
}


def saved_config(text, dtype_name, composite):
    """config.json as save_pretrained writes it: tie_word_embeddings: true is the base default and
    is left out; a composite config nests the text model's differences from its class defaults."""
    if not composite:
        saved = {k: v for k, v in text.items() if not (k == "tie_word_embeddings" and v is True)}
        saved.update({"torch_dtype": dtype_name, "transformers_version": "4.57.0"})
        return saved
    diff = {k: v for k, v in text.items() if k not in GEMMA3_TEXT_DEFAULTS or GEMMA3_TEXT_DEFAULTS[k] != v}
    diff["model_type"] = "gemma3_text"
    return {"architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3",
            "boi_token_index": 255999, "eoi_token_index": 256000, "image_token_index": 262144,
            "mm_tokens_per_image": 256, "initializer_range": 0.02, "text_config": diff,
            "torch_dtype": dtype_name, "transformers_version": "4.57.0"}


def main():
    specs = [(arch, dict(BASE, **spec["config"]), spec) for arch, spec in FIXTURES.items()]
    specs += [(arch, dict(GEMMA_BASE, **spec["config"]), spec) for arch, spec in GEMMA_FIXTURES.items()]
    specs += [(arch, dict(PHI3_BASE, **spec["config"]), spec) for arch, spec in PHI3_FIXTURES.items()]
    for arch, cfg, spec in specs:
        dtype_name = {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}[spec["dtype"]]
        composite = spec.get("composite", False)
        saved = saved_config(cfg, dtype_name, composite) if arch in GEMMA_FIXTURES else dict(cfg, torch_dtype=dtype_name)
        rng = np.random.default_rng(spec["seed"])
        stored = phi3_weights(cfg, rng) if arch in PHI3_FIXTURES else random_weights(cfg, rng)
        weights = {n: quantize(v, spec["dtype"]) for n, v in stored.items()}
        if composite:   # Gemma3ForConditionalGeneration's names for the text model
            stored = {("model.language_model." + n[len("model."):] if n.startswith("model.") else n): v
                      for n, v in stored.items()}

        # Two rows: a full one and a right-padded one whose labels mask a prompt.
        seq, vocab = 12, cfg["vocab_size"]
        input_ids = rng.integers(3, vocab, size=(2, seq))
        attention_mask = np.ones((2, seq), dtype=np.int64)
        attention_mask[1, 9:] = 0
        input_ids[1, 9:] = 0
        labels = input_ids.copy()
        labels[0, :3] = -100
        labels[1, :4] = -100
        labels[1, 9:] = -100

        logits = forward(cfg, weights, input_ids, attention_mask)
        loss = causal_lm_loss(logits, labels)

        # Greedy decoding from row 0 as the prompt: the argmax of the last position, appended, 6 times.
        greedy = input_ids[0:1].copy()
        for _ in range(6):
            step = forward(cfg, weights, greedy, np.ones_like(greedy))
            greedy = np.concatenate([greedy, [[int(np.argmax(step[0, -1]))]]], axis=1)
        greedy_tokens = greedy[0, seq:].tolist()
        extra = {}
        if arch in PHI3_FIXTURES and cfg.get("rope_scaling"):
            short = cfg["original_max_position_embeddings"]
            prefix = forward(cfg, weights, input_ids[:, :short], attention_mask[:, :short])
            extra["short_prefix"] = {"length": short, "logits": [round(float(v), 10) for v in prefix.reshape(-1)]}

        directory = os.path.join(OUT, arch)
        save_model(directory, stored, spec["dtype"], spec["shards"])
        with open(os.path.join(directory, "config.json"), "w") as f:
            json.dump(saved, f, indent=2)
        with open(os.path.join(directory, "expected.json"), "w") as f:
            json.dump({"input_ids": input_ids.tolist(), "attention_mask": attention_mask.tolist(),
                       "labels": labels.tolist(), "logits_shape": list(logits.shape),
                       "logits": [round(float(v), 10) for v in logits.reshape(-1)],
                       "loss": loss, "greedy_tokens": greedy_tokens, **extra}, f)
        print(f"{arch}: loss {loss:.6f}, |logits| max {np.abs(logits).max():.3f}")
        if arch in GEMMA_FIXTURES:
            print_gemma_sensitivity(cfg, weights, input_ids, attention_mask, labels, loss)
        if arch in PHI3_FIXTURES:
            print_phi3_sensitivity(cfg, weights, input_ids, attention_mask, labels, loss)


def print_phi3_sensitivity(cfg, weights, input_ids, attention_mask, labels, loss):
    """How much the window, the partial rotary and longrope's long factors change the loss."""
    changes = [("sliding_window", None), ("partial_rotary_factor", 1.0)]
    if cfg.get("rope_scaling"):
        changes.append(("original_max_position_embeddings", 64))     # the short factors, attention factor kept
    for key, off in changes:
        if cfg.get(key) in (None, off):
            continue
        if key == "partial_rotary_factor":   # full rotary needs one factor per frequency: extend with 1.0
            dim = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
            s = dict(cfg["rope_scaling"])
            for f in ("short_factor", "long_factor"):
                s[f] = s[f] + [1.0] * (dim // 2 - len(s[f]))
            changed_cfg = dict(cfg, partial_rotary_factor=1.0, rope_scaling=s)
        elif key == "original_max_position_embeddings":
            s = cfg["max_position_embeddings"] / cfg["original_max_position_embeddings"]
            kept = math.sqrt(1 + math.log(s) / math.log(cfg["original_max_position_embeddings"]))
            changed_cfg = dict(cfg, original_max_position_embeddings=64,
                               rope_scaling=dict(cfg["rope_scaling"], attention_factor=kept))
        else:
            changed_cfg = dict(cfg, **{key: off})
        changed = causal_lm_loss(forward(changed_cfg, weights, input_ids, attention_mask), labels)
        print(f"    without {key}: loss {changed:.6f} ({abs(changed - loss) / loss:.1e} relative)")


def print_gemma_sensitivity(cfg, weights, input_ids, attention_mask, labels, loss):
    """How much each Gemma feature changes the loss: a fixture where one changes nothing tests nothing."""
    for key, off in [("attn_logit_softcapping", None), ("final_logit_softcapping", None),
                     ("sliding_window", 10 ** 6), ("query_pre_attn_scalar", cfg["head_dim"]),
                     ("rope_local_base_freq", cfg["rope_theta"]), ("rope_scaling", None)]:
        if cfg.get(key) in (None, off) or key not in cfg:
            continue
        changed = causal_lm_loss(forward(dict(cfg, **{key: off}), weights, input_ids, attention_mask), labels)
        print(f"    without {key}: loss {changed:.6f} ({abs(changed - loss) / loss:.1e} relative)")


if __name__ == "__main__":
    main()
