#!/usr/bin/env python3
"""Reference for the multimodal data tests (MultimodalEncodingTest): LLaMA-Factory's mllm_demo
rows encoded for the qwen2_vl template, independently of the Java code.

For every row of ../resources/mllm/mllm_demo.json and each (image_max_pixels, image_min_pixels):
  - each image's grid from transformers' own Qwen2-VL image processor
    (Qwen2VLImageProcessorPil, configured from ../resources/mllm/qwen2_vl/preprocessor_config.json)
    run on the image as LLaMA-Factory's Qwen2VLPlugin regularizes it (written out below: the
    area bounds, then the 28-pixel minimum side and the aspect cap, resized with PIL's bicubic);
  - the messages with each <image> expanded as Qwen2VLPlugin.process_messages does:
    <|vision_start|> + <|image_pad|> x (t h w / merge_size^2) + <|vision_end|>;
  - input_ids and labels as LLaMA-Factory's SupervisedDatasetProcessor builds them with the
    qwen2_vl template's strings (default system "You are a helpful assistant."), each message
    tokenized on its own by transformers' PreTrainedTokenizerFast over the Qwen tokenizer in
    ../resources/templates/real-tokenizers/qwen3, prompt labels -100, cutoff_len 2048 (no cut).

Run from the repository root with a Python that has transformers (5.x), pillow, numpy and torch:
  python3 trainer-core/src/test/python/make_mm_fixtures.py
Writes trainer-core/src/test/resources/mllm/expected.json.
"""
import json
import math
import os

from PIL import Image
from transformers import PreTrainedTokenizerFast
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

HERE = os.path.dirname(os.path.abspath(__file__))
RES = os.path.join(HERE, "..", "resources")
MLLM = os.path.join(RES, "mllm")
OUT = os.path.join(MLLM, "expected.json")
IGNORE = -100

SYSTEM = "<|im_start|>system\n{}<|im_end|>\n"
USER = "<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n"
ASSISTANT = "{}<|im_end|>\n"
DEFAULT_SYSTEM = "You are a helpful assistant."


def regularize(image, max_pixels, min_pixels):
    # MMPluginMixin._preprocess_image, then Qwen2VLPlugin._preprocess_image
    if image.width * image.height > max_pixels:
        f = math.sqrt(max_pixels / (image.width * image.height))
        image = image.resize((int(image.width * f), int(image.height * f)))
    if image.width * image.height < min_pixels:
        f = math.sqrt(min_pixels / (image.width * image.height))
        image = image.resize((int(image.width * f), int(image.height * f)))
    if image.mode != "RGB":
        image = image.convert("RGB")
    if min(image.width, image.height) < 28:
        image = image.resize((max(image.width, 28), max(image.height, 28)))
    if image.width / image.height > 200:
        image = image.resize((image.height * 180, image.height))
    if image.height / image.width > 200:
        image = image.resize((image.width, image.width * 180))
    return image


def main():
    with open(os.path.join(MLLM, "qwen2_vl", "preprocessor_config.json")) as f:
        cfg = json.load(f)
    processor = Qwen2VLImageProcessorPil(min_pixels=cfg["min_pixels"], max_pixels=cfg["max_pixels"],
                                         patch_size=cfg["patch_size"], merge_size=cfg["merge_size"],
                                         temporal_patch_size=cfg["temporal_patch_size"])
    merge = cfg["merge_size"] ** 2
    tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(RES, "templates", "real-tokenizers", "qwen3",
                                                              "tokenizer.json"))
    with open(os.path.join(MLLM, "mllm_demo.json"), encoding="utf-8") as f:
        rows = json.load(f)
    cases = []
    for max_pixels, min_pixels in [(768 * 768, 32 * 32), (128 * 128, 32 * 32)]:
        for i, row in enumerate(rows):
            images = [regularize(Image.open(os.path.join(MLLM, p)), max_pixels, min_pixels) for p in row["images"]]
            grids = processor(images, return_tensors="pt")["image_grid_thw"].tolist()
            tokens = [t * h * w // merge for t, h, w in grids]
            messages, at = [], 0
            for m in row["messages"]:
                content = m["content"]
                while "<image>" in content:   # Qwen2VLPlugin.process_messages
                    content = content.replace("<image>", "<|vision_start|>" + "<|image_pad|>" * tokens[at]
                                              + "<|vision_end|>", 1)
                    at += 1
                messages.append(content)
            assert at == len(grids)
            input_ids, labels = [], []
            for t in range(0, len(messages), 2):
                source = (SYSTEM.format(DEFAULT_SYSTEM) if t == 0 else "") + USER.format(messages[t])
                target = ASSISTANT.format(messages[t + 1])
                s = tok.encode(source, add_special_tokens=False)
                g = tok.encode(target, add_special_tokens=False)
                input_ids += s + g
                labels += [IGNORE] * len(s) + g
            cases.append({"row": i, "image_max_pixels": max_pixels, "image_min_pixels": min_pixels,
                          "images": row["images"], "image_grid_thw": grids, "image_tokens": tokens,
                          "input_ids": input_ids, "labels": labels})
    with open(OUT, "w") as f:
        json.dump({"cases": cases}, f)
        f.write("\n")
    print("wrote", OUT, len(cases), "cases")


if __name__ == "__main__":
    main()
