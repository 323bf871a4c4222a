#!/usr/bin/env python3
"""Reference sizes for ImageSizingTest: LLaMA-Factory's Qwen2-VL image regularization (written out
here from its plugin's rules) followed by transformers' own `smart_resize`.

Run from the repository root with a Python that has transformers (5.x) and pillow installed:
  python3 trainer-core/src/test/python/make_image_sizing_fixtures.py
Writes trainer-core/src/test/resources/image/sizes.csv:
  width,height,image_max_pixels,image_min_pixels,regularized w,h, smart_resize w,h with
  (min 3136, max 12845056), smart_resize w,h with (min 200704, max 1003520)
"""
import math
import os

from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize

OUT = os.path.join(os.path.dirname(__file__), "..", "resources", "image", "sizes.csv")


def regularize(w, h, max_pixels, min_pixels):
    # BasePlugin._preprocess_image, then Qwen2VLPlugin._preprocess_image
    if w * h > max_pixels:
        f = math.sqrt(max_pixels / (w * h))
        w, h = int(w * f), int(h * f)
    if w * h < min_pixels:
        f = math.sqrt(min_pixels / (w * h))
        w, h = int(w * f), int(h * f)
    if min(w, h) < 28:
        w, h = max(w, 28), max(h, 28)
    if w / h > 200:
        w, h = h * 180, h
    if h / w > 200:
        w, h = w, w * 180
    return w, h


CASES = [(300, 168), (1920, 1080), (4000, 3000), (10, 10), (27, 500), (14, 14), (5000, 20), (20, 5000),
         (769, 768), (1000, 1), (42, 42), (70, 98), (297, 168), (322, 182)]

with open(OUT, "w") as f:
    for max_pixels, min_pixels in [(589824, 1024), (262144, 1024), (12845056, 3136)]:
        for w, h in CASES:
            rw, rh = regularize(w, h, max_pixels, min_pixels)
            sh, sw = smart_resize(rh, rw, 28, 3136, 12845056)
            sh2, sw2 = smart_resize(rh, rw, 28, 200704, 1003520)
            f.write(f"{w},{h},{max_pixels},{min_pixels},{rw},{rh},{sw},{sh},{sw2},{sh2}\n")
