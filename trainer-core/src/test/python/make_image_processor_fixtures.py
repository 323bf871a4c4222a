#!/usr/bin/env python3
"""Reference values for the image package's tests (ImageDecoderTest, PilResizeTest,
ImageProcessorTest): Pillow's decode and resize, LLaMA-Factory's Qwen2-VL image regularization
(written out here from its plugin's few lines), and transformers' Qwen2VLImageProcessorPil.

Run from the repository root with a Python that has transformers 5.x, pillow 11.3 and numpy:
  python3 trainer-core/src/test/python/make_image_processor_fixtures.py
Reads trainer-core/src/test/resources/image/processor/{1,2,3}.jpg (LLaMA-Factory's demo images)
and preprocessor_config.json (Qwen2-VL's); writes into the same folder:
  generated images (*.png, *.gif, *.bmp), each image's PIL decode (decoded_*.png for the JPEGs),
  resize/*.bin (PIL's resize bytes, im.tobytes()), fixtures.json (resize cases with sha256,
  pipeline cases: sizes, grid, sha256 of pixel_values as float32 little-endian, their sum and
  sampled values), tiny_pixel_values.bin (one small image's whole pixel_values).
"""
import hashlib
import json
import math
import os

import struct
import zlib

import numpy as np
from PIL import Image
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "resources", "image", "processor")
RESIZE = os.path.join(HERE, "resize")
rng = np.random.default_rng(1234)


def sha(b):
    return hashlib.sha256(b).hexdigest()


def pattern(w, h, channels, noise=24):
    """A smooth gradient with some noise: exercises every weight, still compresses as PNG."""
    y, x = np.mgrid[0:h, 0:w]
    planes = []
    for c in range(channels):
        base = 127 + 100 * np.sin(x / (5 + 3 * c) + c) * np.cos(y / (7 + 2 * c))
        planes.append(base + rng.integers(-noise, noise + 1, size=(h, w)))
    return np.clip(np.stack(planes, axis=-1), 0, 255).astype(np.uint8)


def write_png(path, samples, bit_depth, color_type):
    """A PNG of (h, w, channels) samples at any bit depth, for the layouts Pillow cannot save."""
    h, w = samples.shape[:2]
    rows = []
    for y in range(h):
        row = samples[y].reshape(-1)
        if bit_depth == 16:
            raw = row.astype(">u2").tobytes()
        elif bit_depth == 8:
            raw = row.astype(np.uint8).tobytes()
        else:  # pack bit_depth-bit samples, most significant first
            per = 8 // bit_depth
            padded = np.concatenate([row, np.zeros((-len(row)) % per, dtype=row.dtype)]).reshape(-1, per)
            raw = bytes(int(sum(int(v) << (8 - bit_depth * (i + 1)) for i, v in enumerate(g))) for g in padded)
        rows.append(b"\x00" + raw)

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"".join(rows)))
                + chunk(b"IEND", b""))


def write_generated():
    Image.fromarray(pattern(37, 29, 3)).save(os.path.join(HERE, "rgb_37x29.png"))
    Image.fromarray(pattern(160, 120, 3)).save(os.path.join(HERE, "rgb_160x120.png"))
    Image.fromarray(pattern(37, 29, 1)[:, :, 0]).save(os.path.join(HERE, "gray_37x29.png"))
    rgba = pattern(37, 29, 4)
    rgba[:5, :, 3] = 0  # fully transparent rows keep a colour under them
    rgba[5:9, :, 3] = 255
    Image.fromarray(rgba).save(os.path.join(HERE, "rgba_37x29.png"))
    la = pattern(37, 29, 2)
    Image.fromarray(la).save(os.path.join(HERE, "la_37x29.png"))
    pal = Image.fromarray(pattern(37, 29, 3)).quantize(colors=40)
    pal.info["transparency"] = 3
    pal.save(os.path.join(HERE, "palette_37x29.png"), transparency=3)
    i16 = (pattern(37, 29, 1)[:, :, 0].astype(np.uint16) * 3 + 40).astype(np.uint16)
    i16[0, :5] = 60000
    Image.fromarray(i16).save(os.path.join(HERE, "gray16_37x29.png"))
    Image.fromarray(pattern(37, 29, 1)[:, :, 0] > 127).save(os.path.join(HERE, "bits_37x29.png"))
    Image.fromarray(pattern(300, 200, 3, noise=0)).save(os.path.join(HERE, "large_300x200.png"))
    Image.fromarray(pattern(10, 6, 3)).save(os.path.join(HERE, "tiny_10x6.png"))
    Image.fromarray(pattern(6000, 10, 3, noise=0)).save(os.path.join(HERE, "wide_6000x10.png"))
    Image.fromarray(pattern(40, 30, 3)).quantize(colors=16).save(os.path.join(HERE, "palette_40x30.gif"))
    Image.fromarray(pattern(40, 30, 3)).save(os.path.join(HERE, "rgb_40x30.bmp"))
    # PNG layouts Pillow opens in other modes: 16-bit RGB and grey+alpha, 2- and 4-bit grey, RGB + tRNS
    write_png(os.path.join(HERE, "rgb16_9x7.png"), rng.integers(0, 65536, size=(7, 9, 3)), 16, 2)
    write_png(os.path.join(HERE, "la16_9x7.png"), rng.integers(0, 65536, size=(7, 9, 2)), 16, 4)
    write_png(os.path.join(HERE, "gray2_9x7.png"), rng.integers(0, 4, size=(7, 9, 1)), 2, 0)
    write_png(os.path.join(HERE, "gray4_9x7.png"), rng.integers(0, 16, size=(7, 9, 1)), 4, 0)
    Image.fromarray(pattern(9, 7, 3)).save(os.path.join(HERE, "trns_9x7.png"), transparency=(10, 20, 30))
    # JPEG variants the JDK must decode as libjpeg-turbo does (CMYK: Pillow's samples)
    Image.fromarray(pattern(40, 30, 1)[:, :, 0]).save(os.path.join(HERE, "gray_40x30.jpg"))
    Image.fromarray(pattern(40, 30, 3)).save(os.path.join(HERE, "rgb444_40x30.jpg"), subsampling=0, quality=90)
    Image.fromarray(pattern(41, 31, 3)).save(os.path.join(HERE, "progressive_41x31.jpg"), progressive=True)
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 CW to display; Image.open does not apply it
    Image.fromarray(pattern(40, 30, 3)).save(os.path.join(HERE, "exif6_40x30.jpg"), exif=exif)
    Image.fromarray(pattern(40, 30, 3)).convert("CMYK").save(os.path.join(HERE, "cmyk_40x30.jpg"))


RESIZE_CASES = [
    ("rgb_37x29.png", [(5, 3), (17, 11), (36, 29), (37, 30), (64, 41), (91, 67), (100, 7), (1, 1), (200, 13)]),
    ("rgb_160x120.png", [(41, 29), (7, 150), (33, 33), (159, 61)]),
    ("gray_37x29.png", [(17, 11), (64, 41)]),
    ("rgba_37x29.png", [(17, 11), (64, 41)]),
    ("la_37x29.png", [(17, 11), (64, 41)]),
    ("palette_37x29.png", [(17, 11), (64, 41)]),
    ("gray16_37x29.png", [(17, 11), (64, 41)]),
    ("bits_37x29.png", [(17, 11), (64, 41)]),
]


def resize_fixtures():
    os.makedirs(RESIZE, exist_ok=True)
    out = []
    for name, sizes in RESIZE_CASES:
        im = Image.open(os.path.join(HERE, name))
        im.load()
        for w, h in sizes:
            r = im.resize((w, h))  # default filter: BICUBIC (NEAREST for P and 1)
            data = r.tobytes()
            if r.mode == "1":  # tobytes packs bits; the Java side holds one byte a pixel, 0 or 255
                data = np.array(r, dtype=np.uint8).tobytes()
                data = bytes(255 if v else 0 for v in data)
            fname = f"{name.split('.')[0]}_{w}x{h}.bin"
            with open(os.path.join(RESIZE, fname), "wb") as f:
                f.write(data)
            out.append({"source": name, "mode": im.mode, "width": w, "height": h, "file": fname, "sha256": sha(data)})
    return out


def resize_hashes():
    """Many more ratios, hashed only: every target size from a seeded draw, up and down."""
    im = Image.open(os.path.join(HERE, "rgb_160x120.png"))
    im.load()
    draw = np.random.default_rng(99)
    sizes = [(3, 2), (1000, 13), (160, 1), (1, 120), (80, 60), (320, 240), (53, 40)]
    sizes += [(int(a), int(b)) for a, b in draw.integers(1, 400, size=(40, 2))]
    return [{"width": w, "height": h, "sha256": sha(im.resize((w, h)).tobytes())} for w, h in sizes]


def regularize(image, image_max_pixels, image_min_pixels):
    """LLaMA-Factory's BasePlugin._preprocess_image, then Qwen2VLPlugin._preprocess_image."""
    if (image.width * image.height) > image_max_pixels:
        resize_factor = math.sqrt(image_max_pixels / (image.width * image.height))
        width, height = int(image.width * resize_factor), int(image.height * resize_factor)
        image = image.resize((width, height))
    if (image.width * image.height) < image_min_pixels:
        resize_factor = math.sqrt(image_min_pixels / (image.width * image.height))
        width, height = int(image.width * resize_factor), int(image.height * resize_factor)
        image = image.resize((width, height))
    if image.mode != "RGB":
        image = image.convert("RGB")
    if min(image.width, image.height) < 28:
        width, height = max(image.width, 28), max(image.height, 28)
        image = image.resize((width, height))
    if image.width / image.height > 200:
        width, height = image.height * 180, image.height
        image = image.resize((width, height))
    if image.height / image.width > 200:
        width, height = image.width, image.width * 180
        image = image.resize((width, height))
    return image


PIPELINE_CASES = [
    ("1.jpg", 768 * 768, 32 * 32),
    ("2.jpg", 768 * 768, 32 * 32),
    ("3.jpg", 768 * 768, 32 * 32),
    ("decoded_1.png", 768 * 768, 32 * 32),
    ("decoded_2.png", 768 * 768, 32 * 32),
    ("decoded_3.png", 768 * 768, 32 * 32),
    ("rgba_37x29.png", 768 * 768, 32 * 32),
    ("la_37x29.png", 768 * 768, 32 * 32),
    ("gray_37x29.png", 768 * 768, 32 * 32),
    ("palette_37x29.png", 768 * 768, 32 * 32),
    ("gray16_37x29.png", 768 * 768, 32 * 32),
    ("bits_37x29.png", 768 * 768, 32 * 32),
    ("large_300x200.png", 128 * 128, 32 * 32),
    ("rgba_37x29.png", 24 * 24, 16 * 16),
    ("palette_37x29.png", 24 * 24, 16 * 16),
    ("tiny_10x6.png", 768 * 768, 32 * 32),
    ("wide_6000x10.png", 768 * 768, 32 * 32),
    ("palette_40x30.gif", 768 * 768, 32 * 32),
    ("rgb_40x30.bmp", 768 * 768, 32 * 32),
    ("gray_40x30.jpg", 768 * 768, 32 * 32),
    ("exif6_40x30.jpg", 768 * 768, 32 * 32),
    ("cmyk_40x30.jpg", 768 * 768, 32 * 32),
]


def pipeline_fixtures(processor):
    out = []
    for name, max_pixels, min_pixels in PIPELINE_CASES:
        im = Image.open(os.path.join(HERE, name))
        mode = im.mode
        reg = regularize(im, max_pixels, min_pixels)
        feature = processor(images=[reg], return_tensors="np")
        pv = np.ascontiguousarray(feature["pixel_values"], dtype="<f4")
        grid = [int(v) for v in feature["image_grid_thw"][0]]
        p = processor.patch_size
        resized = reg.resize((grid[2] * p, grid[1] * p), resample=Image.Resampling.BICUBIC)
        flat = pv.reshape(-1)
        stride = max(1, flat.size // 200)
        case = {
            "file": name, "image_max_pixels": max_pixels, "image_min_pixels": min_pixels, "mode": mode,
            "regularized": [reg.width, reg.height], "regularized_sha256": sha(reg.tobytes()),
            "resized": [resized.width, resized.height], "resized_sha256": sha(resized.tobytes()),
            "grid_thw": grid, "shape": list(pv.shape), "sha256": sha(pv.tobytes()),
            "sum": float(flat.astype(np.float64).sum()), "stride": stride,
            "samples": [float(v) for v in flat[::stride]],
        }
        out.append(case)
        if name == "tiny_10x6.png":
            with open(os.path.join(HERE, "tiny_pixel_values.bin"), "wb") as f:
                f.write(pv.tobytes())
    return out


def main():
    write_generated()
    decodes = []
    for i in (1, 2, 3):
        im = Image.open(os.path.join(HERE, f"{i}.jpg"))
        im.convert("RGB").save(os.path.join(HERE, f"decoded_{i}.png"))
    for name in sorted(os.listdir(HERE)):
        if name.endswith((".png", ".jpg", ".gif", ".bmp")):
            im = Image.open(os.path.join(HERE, name))
            data = im.tobytes()
            if im.mode == "1":
                data = bytes(255 if v else 0 for v in np.array(im, dtype=np.uint8).reshape(-1))
            entry = {"file": name, "mode": im.mode, "width": im.width, "height": im.height, "sha256": sha(data)}
            if im.mode == "P":
                entry["rgb_sha256"] = sha(im.convert("RGB").tobytes())
            decodes.append(entry)
    with open(os.path.join(HERE, "preprocessor_config.json")) as f:
        config = json.load(f)
    kwargs = {k: v for k, v in config.items() if k not in ("image_processor_type", "processor_class")}
    processor = Qwen2VLImageProcessorPil(**kwargs)
    fixtures = {
        "versions": {"pillow": Image.__version__, "numpy": np.__version__},
        "decodes": decodes, "resizes": resize_fixtures(), "resize_hashes": resize_hashes(), "pipeline": pipeline_fixtures(processor),
    }
    with open(os.path.join(HERE, "fixtures.json"), "w") as f:
        json.dump(fixtures, f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
