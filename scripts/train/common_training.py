"""Shared training plumbing: threads, seeded batches, checkpoints, schedules, logging."""
from __future__ import annotations

import math
import os
import pathlib
import time

import numpy as np
import torch

import synthetic_shapes as shapes


def setup_threads(threads: int = 2) -> None:
    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)


def scene_batch(seed: int, index: int, count: int):
    """Deterministic training scenes for batch `index` (resuming needs no RNG state)."""
    rng = np.random.default_rng([seed, index])
    return [shapes.training_scene(rng) for _ in range(count)]


def images_to_tensor(images) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float (N, 3, H, W) in [-1, 1]."""
    array = np.stack(images).astype(np.float32) / 127.5 - 1.0
    return torch.from_numpy(array).permute(0, 3, 1, 2).contiguous()


def warmup_cosine(step: int, total: int, warmup: int, peak: float, floor_fraction: float) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (floor_fraction + (1 - floor_fraction) * 0.5 * (1 + math.cos(math.pi * progress)))


def save_atomic(obj, path: pathlib.Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


class ProgressLog:
    """Appends step, loss, samples/s and ETA lines to a log file (and stdout)."""

    def __init__(self, path: pathlib.Path, total_steps: int, start_step: int):
        self.file = open(path, "a", buffering=1)
        self.total, self.start_step, self.start = total_steps, start_step, time.time()

    def line(self, text: str) -> None:
        stamp = time.strftime("%H:%M:%S", time.gmtime())
        self.file.write(f"{stamp} {text}\n")
        print(f"{stamp} {text}", flush=True)

    def step(self, step: int, batch: int, **values) -> None:
        elapsed = time.time() - self.start
        done = step + 1 - self.start_step
        rate = done * batch / max(elapsed, 1e-9)
        eta = (self.total - step - 1) * batch / max(rate, 1e-9)
        fields = " ".join(f"{k} {v:.5f}" for k, v in values.items())
        self.line(f"step {step + 1}/{self.total} {fields} samples/s {rate:.1f} eta_min {eta / 60:.1f}")
