#!/usr/bin/env python3
"""The tiny Qwen2-VL of the multimodal end-to-end tests, and its reference evaluation loss on
LLaMA-Factory's mllm_demo, from Hugging Face's own code in float64.

Writes trainer-core/src/test/resources/qwen2vl_demo/:
  model/     a randomly initialised Qwen2VLForConditionalGeneration (text: hidden 32, 2 layers,
             M-RoPE sections [2, 1, 1]; vision: embed 32, depth 2, patch 14, merge 2), saved by
             transformers' save_pretrained in bfloat16 (read back for the reference, so both sides
             start from the same values), with the tokenizer given on the command line
             (a Qwen2 BPE cut to 3,000 tokens plus Qwen's 26 special tokens at ids 3000-3025,
             <|vision_start|> 3009, <|vision_end|> 3010, <|image_pad|> 3012) and the image
             processor's preprocessor_config.json (Qwen2VLImageProcessor's defaults)
  expected.json  per mllm_demo row: input_ids and labels as LLaMA-Factory's qwen2_vl template
             and plugin encode them (written out below from its register_template slots and
             Qwen2VLPlugin.process_messages), each image's image_grid_thw, the row's summed token
             cross entropy and target count; and eval_loss = sum over rows / targets over rows
             (spark-sft's eval_loss: token-weighted).

The pixels come from transformers' PIL image processor (Qwen2VLImageProcessorPil) after
LLaMA-Factory's regularization (image_max_pixels 768*768, image_min_pixels 32*32: the demo images
are inside both, so they reach the processor as decoded); the forward is the model in float64.

Run from the repository root, with transformers 5.x, torch and pillow installed:
  python3 trainer-core/src/test/python/make_qwen2vl_demo_fixture.py TOKENIZER_DIR MLLM_DEMO_DIR
(MLLM_DEMO_DIR holds LLaMA-Factory's mllm_demo.json and mllm_demo_data/).
"""
import json
import math
import os
import shutil
import sys

import torch
from PIL import Image
from transformers import AutoTokenizer, Qwen2VLConfig, Qwen2VLForConditionalGeneration
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

OUT = os.path.join(os.path.dirname(__file__), "..", "resources", "qwen2vl_demo")
SYSTEM = "You are a helpful assistant."
IMAGE_MAX_PIXELS = 768 * 768
IMAGE_MIN_PIXELS = 32 * 32


def regularize(image):
    """LLaMA-Factory's BasePlugin + Qwen2VLPlugin _preprocess_image."""
    if image.width * image.height > IMAGE_MAX_PIXELS:
        f = math.sqrt(IMAGE_MAX_PIXELS / (image.width * image.height))
        image = image.resize((int(image.width * f), int(image.height * f)))
    if image.width * image.height < IMAGE_MIN_PIXELS:
        f = math.sqrt(IMAGE_MIN_PIXELS / (image.width * image.height))
        image = image.resize((int(image.width * f), int(image.height * f)))
    if image.mode != "RGB":
        image = image.convert("RGB")
    if min(image.width, image.height) < 28:
        image = image.resize((max(image.width, 28), max(image.height, 28)))
    return image


def encode(tok, row, grids, merge):
    """LLaMA-Factory's supervised encoding of one sharegpt row with the qwen2_vl template."""
    images = iter(grids)
    messages = []
    for m in row["messages"]:
        content = m["content"]
        while "<image>" in content:
            n = int(torch.tensor(next(images)).prod().item()) // (merge * merge)
            content = content.replace("<image>", "<|vision_start|>" + "<|image_pad|>" * n + "<|vision_end|>", 1)
        messages.append((m["role"], content))
    ids, labels = [], []
    for i in range(0, len(messages), 2):
        (ru, user), (ra, answer) = messages[i], messages[i + 1]
        assert ru == "user" and ra == "assistant"
        source = ("<|im_start|>system\n" + SYSTEM + "<|im_end|>\n" if i == 0 else "")
        source += "<|im_start|>user\n" + user + "<|im_end|>\n<|im_start|>assistant\n"
        target = answer + "<|im_end|>\n"
        s = tok.encode(source, add_special_tokens=False)
        t = tok.encode(target, add_special_tokens=False)
        ids += s + t
        labels += [-100] * len(s) + t
    return ids, labels


def main():
    tokenizer_dir, demo_dir = sys.argv[1], sys.argv[2]
    torch.manual_seed(20261201)
    config = Qwen2VLConfig(
        text_config=dict(vocab_size=3072, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                         rope_scaling={"type": "mrope", "mrope_section": [2, 1, 1]}, rope_theta=1000000.0,
                         rms_norm_eps=1e-6, tie_word_embeddings=False, bos_token_id=3000, eos_token_id=3002),
        vision_config=dict(depth=2, embed_dim=32, hidden_size=32, num_heads=4, mlp_ratio=2, patch_size=14,
                           spatial_merge_size=2, temporal_patch_size=2, in_channels=3),
        image_token_id=3012, video_token_id=3013, vision_start_token_id=3009, vision_end_token_id=3010,
        tie_word_embeddings=False)
    model = Qwen2VLForConditionalGeneration(config).eval().to(torch.bfloat16)
    model_dir = os.path.join(OUT, "model")
    shutil.rmtree(model_dir, ignore_errors=True)
    model.save_pretrained(model_dir, safe_serialization=True)
    model = Qwen2VLForConditionalGeneration.from_pretrained(model_dir, dtype=torch.float64).eval()
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(tokenizer_dir, f), model_dir)
    processor = Qwen2VLImageProcessorPil()
    processor.save_pretrained(model_dir)
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    merge = processor.merge_size

    rows = json.load(open(os.path.join(demo_dir, "mllm_demo.json")))
    out_rows, loss_sum, targets = [], 0.0, 0
    for index, row in enumerate(rows):
        images = [regularize(Image.open(os.path.join(demo_dir, p))) for p in row["images"]]
        px = processor(images=images, return_tensors="pt")
        grids = px["image_grid_thw"].tolist()
        ids, labels = encode(tok, row, grids, merge)
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids]), pixel_values=px["pixel_values"].double(),
                           image_grid_thw=px["image_grid_thw"],
                           mm_token_type_ids=(torch.tensor([ids]) == config.image_token_id).long()).logits[0]
        shift_logits, shift_labels = logits[:-1], torch.tensor(labels[1:])
        ce = torch.nn.functional.cross_entropy(shift_logits, shift_labels, ignore_index=-100, reduction="sum")
        n = int((shift_labels != -100).sum())
        loss_sum += float(ce)
        targets += n
        out_rows.append({"index": index, "input_ids": ids, "labels": labels, "image_grid_thw": grids,
                         "loss_sum": float(ce), "num_targets": n,
                         "pixel_values_sum": float(px["pixel_values"].double().sum()),
                         "pixel_values_abs_sum": float(px["pixel_values"].double().abs().sum())})
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump({"eval_loss": loss_sum / targets, "rows": out_rows}, f)
    print("eval_loss", loss_sum / targets, "targets", targets)


if __name__ == "__main__":
    main()
