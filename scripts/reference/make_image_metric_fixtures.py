#!/usr/bin/env python3
"""Goldens for ImageMetrics (SSIM, PSNR): skimage on committed uint8 RGB image pairs.

Writes Tests/Fixtures/image_metrics/{<pair>_a.png, <pair>_b.png, values.json}. The values are
computed from the PNGs as read back (PIL, uint8 H x W x 3), exactly as

    skimage.metrics.structural_similarity(a, b, channel_axis=2, win_size=W, data_range=255)
    skimage.metrics.peak_signal_noise_ratio(a, b, data_range=255)

(skimage defaults otherwise: uniform window, K1 0.01, K2 0.03, sample covariance, float64).
Windows: 3, 7, 11, the largest odd window that fits, and 511 on the 512x512 pair (MixDQ's
sensitivity window). Pairs: noise plus structure (gradients, discs, boxes); the 512x512 pair uses
8x8-block noise so its PNGs stay small. One pair saturates at 0 and 255.

Deterministic (numpy default_rng with fixed seeds). Pinned: numpy 2.4.6, pillow 13.0.0,
scikit-image 0.26.0 (scripts/reference/requirements.txt).
Run: .venv-reference/bin/python scripts/reference/make_image_metric_fixtures.py   (from the repo root)
"""
import json
import os
import sys

import numpy as np
import skimage
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

OUT = os.path.join("Tests", "Fixtures", "image_metrics")


def structure(h, w, rng):
    """A smooth RGB gradient with a few filled discs and boxes (float, 0..255)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.stack([40 + 150 * x / w, 60 + 120 * y / h, 200 - 120 * (x + y) / (h + w)], axis=2)
    for _ in range(4):
        cy, cx = rng.integers(0, h), rng.integers(0, w)
        r = rng.integers(max(2, min(h, w) // 12), max(3, min(h, w) // 4))
        colour = rng.integers(0, 256, size=3)
        if rng.random() < 0.5:
            mask = (y - cy) ** 2 + (x - cx) ** 2 <= r * r
        else:
            mask = (abs(y - cy) <= r) & (abs(x - cx) <= r)
        img[mask] = colour
    return img


def to_uint8(img):
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def block_noise(h, w, block, sigma, rng):
    coarse = rng.normal(0, sigma, size=((h + block - 1) // block, (w + block - 1) // block, 3))
    return np.repeat(np.repeat(coarse, block, axis=0), block, axis=1)[:h, :w]


def make_pairs():
    pairs = {}
    rng = np.random.default_rng(9)
    base = structure(64, 64, rng)
    pairs["noise_64x64"] = (to_uint8(base + rng.normal(0, 8, base.shape)),
                            to_uint8(base + rng.normal(0, 20, base.shape)))

    rng = np.random.default_rng(10)   # 96 wide, 80 high
    base = structure(80, 96, rng)
    other = np.roll(base, 2, axis=1) * 0.9 + 10
    pairs["shift_96x80"] = (to_uint8(base + rng.normal(0, 5, base.shape)),
                            to_uint8(other + rng.normal(0, 12, base.shape)))

    rng = np.random.default_rng(11)   # clipped at both ends: many 0 and 255 pixels
    base = structure(40, 48, rng) * 1.6 - 60
    pairs["saturated_48x40"] = (to_uint8(base + rng.normal(0, 30, base.shape)),
                                to_uint8(base + rng.normal(0, 30, base.shape)))

    rng = np.random.default_rng(12)
    base = structure(512, 512, rng)
    pairs["blocks_512x512"] = (to_uint8(base + block_noise(512, 512, 8, 12, rng)),
                               to_uint8(np.roll(base, 3, axis=0) + block_noise(512, 512, 8, 18, rng)))
    return pairs


def main():
    os.makedirs(OUT, exist_ok=True)
    records = []
    for name, (a, b) in make_pairs().items():
        files = []
        for tag, img in (("a", a), ("b", b)):
            fname = f"{name}_{tag}.png"
            Image.fromarray(img, "RGB").save(os.path.join(OUT, fname), optimize=True)
            files.append(fname)
        # Metrics of the images exactly as stored.
        ra, rb = (np.asarray(Image.open(os.path.join(OUT, f)).convert("RGB")) for f in files)
        assert ra.dtype == np.uint8 and np.array_equal(ra, a) and np.array_equal(rb, b)
        h, w = ra.shape[:2]
        largest = min(h, w) if min(h, w) % 2 == 1 else min(h, w) - 1
        windows = sorted({3, 7, 11, largest} | ({511} if min(h, w) >= 511 else set()))
        ssim = {str(win): float(structural_similarity(ra, rb, channel_axis=2, win_size=win, data_range=255))
                for win in windows}
        psnr = float(peak_signal_noise_ratio(ra, rb, data_range=255))
        records.append({"name": name, "a": files[0], "b": files[1], "width": w, "height": h,
                        "ssim": ssim, "psnr": psnr})
        print(name, f"{w}x{h}", "psnr", psnr, "ssim", ssim)
    doc = {
        "generator": "scripts/reference/make_image_metric_fixtures.py",
        "expression": "structural_similarity(a, b, channel_axis=2, win_size=W, data_range=255); "
                      "peak_signal_noise_ratio(a, b, data_range=255)",
        "versions": {"scikit-image": skimage.__version__, "numpy": np.__version__,
                     "python": sys.version.split()[0]},
        "pairs": records,
    }
    with open(os.path.join(OUT, "values.json"), "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
