#!/usr/bin/env python3
"""Reference fixtures for the Qwen2-VL and Qwen2.5-VL model tests (Qwen2Vl*Test).

Builds tiny random Qwen2VLForConditionalGeneration and Qwen2_5_VLForConditionalGeneration models
with transformers, rounds every parameter to bfloat16 (so that the stored files hold exactly the
values the reference computes with), casts the models to float64 and writes, per model, under
src/test/resources/qwen2vl/<name>/:

  hub/          config.json + model.safetensors as the Hugging Face hub checkpoints hold them: the
                text keys at the top level, rope_scaling {"type": "mrope", "mrope_section"}, vision
                keys as Qwen's (in_chans), weights named visual.*, model.layers.*, model.embed_tokens,
                model.norm, lm_head (checked here: transformers loads this directory to the same
                logits)
  t5/           (qwen2_vl only) the transformers-5 layout: save_pretrained's config.json (text_config,
                rope_parameters), weights named as transformers 5's modules are, model.visual.*,
                model.language_model.* (5.17's save_pretrained maps them back to the hub's names, earlier 5.x
                releases did not); checked here: transformers loads it to the same logits
  expected.json the batch (input_ids with image pads, attention_mask with one row padded on the
                right, labels, image_grid_thw of three images of different grids), get_rope_index's
                position ids (3, batch, seq) and rope deltas, the loss (float64) and its gradient for four
                small tensors (vision block 0's qkv bias and norm1 weight, the merger's last bias, decoder layer 0's
                q_proj bias), the text-only batch, greedy tokens after an image (with and without rope deltas)
  *.f64         little-endian float64 arrays: logits.f64 (batch, seq, vocab), vision.f64 (merged
                tokens, hidden) = the vision tower's output for all images, text_logits.f64

pixel_values are not stored: they are pixel(i) = sin(0.37 * i + 0.11) * cos(0.013 * i) for the
flat index i of the (patches, C*T*P*P) array, which the Java test computes the same way.

Run from the repository root:  /path/to/venv/bin/python trainer-core/src/test/python/make_qwen2vl_fixtures.py
Needs torch, transformers (5.x) and safetensors.
"""
import copy
import json
import math
import os
import shutil

import numpy as np
import torch
from safetensors.torch import save_file
from transformers import (Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2VLConfig,
                          Qwen2VLForConditionalGeneration)

OUT = os.path.join(os.path.dirname(__file__), "..", "resources", "qwen2vl")
VOCAB = 96
IMAGE, VIDEO, START, END = 90, 91, 92, 93
PATCH, TEMPORAL, MERGE, CHANNELS = 14, 2, 2, 3
# three images: A (1, 4, 6) gives 6 merged tokens in 2 windows of Qwen2.5's window 56, B (1, 2, 2) one
# token, C (1, 2, 4) two tokens; A and B in row 0, C in row 1, which is padded on the right
GRIDS = [[1, 4, 6], [1, 2, 2], [1, 2, 4]]

TEXT = dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=24, num_hidden_layers=2, num_attention_heads=2,
            num_key_value_heads=1, rms_norm_eps=1e-6, max_position_embeddings=512)
MROPE = [2, 3, 3]   # head_dim 16: sums to head_dim / 2
THETA = 10000.0
GRADIENTS = ["model.visual.blocks.0.attn.qkv.bias", "model.visual.blocks.0.norm1.weight", "model.visual.merger.mlp.2.bias",
             "model.language_model.layers.0.self_attn.q_proj.bias"]


def pixels(num_patches):
    i = np.arange(num_patches * CHANNELS * TEMPORAL * PATCH * PATCH, dtype=np.float64)
    return torch.from_numpy((np.sin(0.37 * i + 0.11) * np.cos(0.013 * i)).reshape(num_patches, -1))


def randomize(model, seed):
    """Weights ~ N(0, 1/fan_in), biases ~ N(0, 0.1^2), norms 1 + N(0, 0.1^2); all rounded to bf16."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                v = torch.randn(p.shape, generator=g, dtype=torch.float64) * 0.1
            elif p.dim() == 1:
                v = 1 + torch.randn(p.shape, generator=g, dtype=torch.float64) * 0.1
            else:
                fan_in = math.prod(p.shape[1:])
                v = torch.randn(p.shape, generator=g, dtype=torch.float64) / math.sqrt(fan_in)
            p.copy_(v.to(torch.bfloat16).to(p.dtype))


def batch():
    def image(grid):
        return [START] + [IMAGE] * (grid[0] * grid[1] * grid[2] // MERGE ** 2) + [END]
    row0 = [5, 17, 33] + image(GRIDS[0]) + [40] + image(GRIDS[1]) + [60, 61, 62]
    row1 = [7, 8] + image(GRIDS[2]) + [70, 71, 72, 73]
    seq = max(len(row0), len(row1))
    ids, mask = [], []
    for row in (row0, row1):
        ids.append(row + [0] * (seq - len(row)))
        mask.append([1] * len(row) + [0] * (seq - len(row)))
    ids = torch.tensor(ids)
    mask = torch.tensor(mask)
    labels = ids.clone()
    labels[(ids == IMAGE) | (ids == START) | (ids == END) | (mask == 0)] = -100
    labels[:, :2] = -100     # a prompt
    return ids, mask, labels


def hub_config(kind, cfg):
    """config.json as the Qwen hub checkpoints have it (transformers 4.x, flat text keys)."""
    c = {"architectures": [type_name(kind)], "model_type": kind, "attention_dropout": 0.0,
         "bos_token_id": 1, "eos_token_id": 2, "vision_start_token_id": START, "vision_end_token_id": END,
         "vision_token_id": 94, "image_token_id": IMAGE, "video_token_id": VIDEO, "hidden_act": "silu",
         "initializer_range": 0.02, "max_window_layers": 2, "rope_theta": THETA, "sliding_window": 512,
         "tie_word_embeddings": cfg.tie_word_embeddings, "torch_dtype": "bfloat16", "transformers_version": "4.49.0",
         "use_cache": True, "use_sliding_window": False,
         "rope_scaling": {"type": "mrope", "mrope_section": MROPE}}
    c.update(TEXT)
    v = cfg.vision_config
    if kind == "qwen2_vl":
        c["vision_config"] = {"depth": v.depth, "embed_dim": v.embed_dim, "mlp_ratio": v.mlp_ratio,
                              "num_heads": v.num_heads, "in_chans": CHANNELS, "hidden_size": v.hidden_size,
                              "patch_size": PATCH, "spatial_merge_size": MERGE, "spatial_patch_size": PATCH,
                              "temporal_patch_size": TEMPORAL}
    else:
        c["vision_config"] = {"depth": v.depth, "hidden_act": "silu", "hidden_size": v.hidden_size,
                              "intermediate_size": v.intermediate_size, "num_heads": v.num_heads,
                              "in_chans": CHANNELS, "out_hidden_size": v.out_hidden_size, "patch_size": PATCH,
                              "spatial_merge_size": MERGE, "spatial_patch_size": PATCH,
                              "window_size": v.window_size, "fullatt_block_indexes": list(v.fullatt_block_indexes),
                              "tokens_per_second": 2, "temporal_patch_size": TEMPORAL}
    return c


def type_name(kind):
    return "Qwen2VLForConditionalGeneration" if kind == "qwen2_vl" else "Qwen2_5_VLForConditionalGeneration"


def hub_name(name):
    """transformers 5's parameter name to the hub checkpoints' name."""
    if name.startswith("model.visual."):
        return name[len("model."):]
    if name.startswith("model.language_model."):
        return "model." + name[len("model.language_model."):]
    return name


def build(kind):
    text = dict(TEXT, rope_parameters={"rope_type": "default", "rope_theta": THETA, "mrope_section": MROPE})
    if kind == "qwen2_vl":
        vision = dict(depth=2, embed_dim=16, hidden_size=32, mlp_ratio=2, num_heads=2, in_channels=CHANNELS,
                      patch_size=PATCH, spatial_merge_size=MERGE, temporal_patch_size=TEMPORAL, hidden_act="quick_gelu")
        cfg = Qwen2VLConfig(text_config=text, vision_config=vision, image_token_id=IMAGE, video_token_id=VIDEO,
                            vision_start_token_id=START, vision_end_token_id=END, tie_word_embeddings=True)
        model = Qwen2VLForConditionalGeneration(cfg)
    else:
        # window 56 = 2 merged tokens a side; blocks 0 and 2 attend in windows, block 1 over the whole image
        vision = dict(depth=3, hidden_size=16, intermediate_size=24, num_heads=2, in_channels=CHANNELS,
                      patch_size=PATCH, spatial_merge_size=MERGE, temporal_patch_size=TEMPORAL, out_hidden_size=32,
                      window_size=56, fullatt_block_indexes=[1], hidden_act="silu")
        cfg = Qwen2_5_VLConfig(text_config=text, vision_config=vision, image_token_id=IMAGE, video_token_id=VIDEO,
                               vision_start_token_id=START, vision_end_token_id=END, tie_word_embeddings=False)
        model = Qwen2_5_VLForConditionalGeneration(cfg)
    cfg._attn_implementation = "eager"
    cfg.text_config._attn_implementation = "eager"
    cfg.vision_config._attn_implementation = "eager"
    randomize(model, 1234 if kind == "qwen2_vl" else 4321)
    return cfg, model.eval()


def write_f64(path, t):
    t.detach().to(torch.float64).contiguous().numpy().astype("<f8").tofile(path)


def main(kind, name, with_t5):
    out = os.path.join(OUT, name)
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    cfg, model = build(kind)
    if with_t5:
        # save_pretrained's config.json (text_config, rope_parameters); 5.17's save_pretrained writes the hub's
        # weight names back, so the weights are written under the module names themselves (model.visual.*,
        # model.language_model.*), as transformers 5's own state_dict and its first releases' files have them
        t5 = os.path.join(out, "t5")
        copy.deepcopy(model).to(torch.bfloat16).save_pretrained(t5)
        for f in os.listdir(t5):
            os.remove(os.path.join(t5, f)) if f != "config.json" else None
        state = {n: p.detach().to(torch.bfloat16).contiguous() for n, p in model.state_dict().items()
                 if not (cfg.tie_word_embeddings and n == "lm_head.weight")}
        assert any(n.startswith("model.language_model.") for n in state) and any(n.startswith("model.visual.") for n in state)
        save_file(state, os.path.join(t5, "model.safetensors"), metadata={"format": "pt"})
    hub = os.path.join(out, "hub")
    os.makedirs(hub)
    with open(os.path.join(hub, "config.json"), "w") as f:
        json.dump(hub_config(kind, cfg), f, indent=2)
    state = {hub_name(n): p.detach().to(torch.bfloat16).contiguous() for n, p in model.state_dict().items()
             if not (cfg.tie_word_embeddings and n == "lm_head.weight")}
    save_file(state, os.path.join(hub, "model.safetensors"), metadata={"format": "pt"})

    model = model.to(torch.float64)
    ids, mask, labels = batch()
    grid = torch.tensor(GRIDS)
    pv = pixels(int(grid.prod(-1).sum()))
    token_types = (ids == IMAGE).int()
    with torch.no_grad():
        positions, deltas = model.model.get_rope_index(ids, token_types, image_grid_thw=grid, attention_mask=mask)
        vision = model.model.visual(pv, grid_thw=grid).pooler_output
        result = model(input_ids=ids, attention_mask=mask, pixel_values=pv, image_grid_thw=grid,
                       mm_token_type_ids=token_types, labels=labels)
        # the same forward with the positions given: what the Java model receives
        given = model(input_ids=ids, attention_mask=mask, pixel_values=pv, image_grid_thw=grid,
                      position_ids=positions).logits
        assert torch.equal(given, result.logits)
        text_ids = torch.tensor([[5, 9, 11, 13, 17, 19]])
        text_logits = model(input_ids=text_ids).logits
        # the hub directory loads in transformers to the same model
        loaded = type(model).from_pretrained(hub, dtype=torch.float64, attn_implementation="eager").eval()
        again = loaded(input_ids=ids, attention_mask=mask, pixel_values=pv, image_grid_thw=grid,
                       mm_token_type_ids=token_types).logits
        assert torch.equal(again, result.logits), (again - result.logits).abs().max()
        if with_t5:
            loaded = type(model).from_pretrained(os.path.join(out, "t5"), dtype=torch.float64,
                                                 attn_implementation="eager").eval()
            again = loaded(input_ids=ids, attention_mask=mask, pixel_values=pv, image_grid_thw=grid,
                           mm_token_type_ids=token_types).logits
            assert torch.equal(again, result.logits), (again - result.logits).abs().max()
        # row 0 up to image A and one token after it: image A's rope delta is -3, so decoding must add it
        prompt = ids[:1, :12]
        greedy = greedy_with_image(model, prompt, pv[:24], grid[:1], 5)
        wrong = greedy_with_image(model, prompt, pv[:24], grid[:1], 5, ignore_deltas=True)
    # gradients of the mean loss for a few small tensors: the vision tower's first and last, the merger, the decoder
    model.zero_grad()
    model(input_ids=ids, attention_mask=mask, pixel_values=pv, image_grid_thw=grid, mm_token_type_ids=token_types,
          labels=labels).loss.backward()
    grads = {hub_name(n): p.grad.flatten().tolist() for n, p in model.named_parameters() if n in GRADIENTS}
    assert len(grads) == len(GRADIENTS), grads.keys()
    write_f64(os.path.join(out, "logits.f64"), result.logits)
    write_f64(os.path.join(out, "vision.f64"), vision)
    write_f64(os.path.join(out, "text_logits.f64"), text_logits)
    expected = {
        "input_ids": ids.tolist(), "attention_mask": mask.tolist(), "labels": labels.tolist(),
        "image_grid_thw": GRIDS, "position_ids": positions.tolist(), "rope_deltas": deltas.flatten().tolist(),
        "loss": result.loss.item(), "logits_shape": list(result.logits.shape), "vision_shape": list(vision.shape),
        "text_input_ids": text_ids.tolist(), "text_logits_shape": list(text_logits.shape),
        "gradients": grads, "greedy_prompt": prompt[0].tolist(), "greedy_tokens": greedy, "greedy_tokens_without_rope_deltas": wrong,
    }
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f)
    print(name, "loss", result.loss.item(), "max |logit|", result.logits.abs().max().item())


def greedy_with_image(model, prompt, pv, grid, steps, ignore_deltas=False):
    """Argmax decoding of a prompt with an image with the KV cache: transformers' rope_deltas path (or, to show
    that the test tells them apart, decode steps at their plain cache positions)."""
    if ignore_deltas:
        with torch.no_grad():
            ids = prompt
            pos, _ = model.model.get_rope_index(ids, (ids == IMAGE).int(), image_grid_thw=grid)
            out = model(input_ids=ids, pixel_values=pv, image_grid_thw=grid, position_ids=pos, use_cache=True)
            tokens, cache = [int(out.logits[0, -1].argmax())], out.past_key_values
            for s in range(1, steps):
                p = torch.full((3, 1, 1), ids.shape[1] + s - 1)
                out = model(input_ids=torch.tensor([[tokens[-1]]]), position_ids=p, past_key_values=cache, use_cache=True)
                tokens.append(int(out.logits[0, -1].argmax()))
                cache = out.past_key_values
        return tokens
    out = model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), pixel_values=pv,
                         image_grid_thw=grid, mm_token_type_ids=(prompt == IMAGE).int(), max_new_tokens=steps,
                         do_sample=False, eos_token_id=None, pad_token_id=0)
    return out[0, prompt.shape[1]:].tolist()


if __name__ == "__main__":
    torch.manual_seed(0)
    main("qwen2_vl", "qwen2_vl", True)
    main("qwen2_5_vl", "qwen2_5_vl", False)
