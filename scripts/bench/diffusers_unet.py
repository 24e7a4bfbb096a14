#!/usr/bin/env python3
"""Time one diffusers UNet2DConditionModel forward on CPU: the PyTorch baseline for `mixdq bench`.

Builds the UNet from a diffusers config.json with random weights (no download: the weights do not matter for speed,
only that they are finite and keep activations O(1)), feeds batch-1 SDXL inputs and prints ONE JSON line:

    {"runtime": "pytorch", "precision": "fp32", "median_s": ..., "times": [...], "peak_rss_gb": ..., "torch": "..."}

Example (full size, ~30 s per fp32 forward on 2 cores, ~11 GB RSS):

    .venv-reference/bin/python scripts/bench/diffusers_unet.py --config configs/models/sdxl-turbo-unet.json \
        --height 512 --width 512 --precision fp32 --threads 2 --runs 3 --warmup 1

Weights are allocated directly in the target dtype (built on the meta device, cast there, then materialised with
to_empty) so a bf16 run never holds an fp32 copy. peak_rss_gb is the process's ru_maxrss in GiB (2^30 bytes).

--precision dynamic-int8 is the "PyTorch dynamic INT8" peer of `mixdq bench unet --quant w8a8`: the fp32 UNet with
every nn.Linear swapped in place by torch.ao.quantization.quantize_dynamic with its default qconfig (qint8 weights,
per tensor; activations quantized per call from their observed range); convolutions stay fp32 (PyTorch has no
dynamic quantization for them). The build time includes the conversion.
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import resource
import statistics
import sys
import time

import torch
from torch import nn

import diffusers
from diffusers import UNet2DConditionModel

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
# Precisions that build the fp32 model and then convert it.
CONVERSIONS = {"dynamic-int8": torch.float32}


@torch.no_grad()
def init_random_(model: nn.Module, seed: int) -> None:
    """Fill every parameter and buffer in place: Conv/Linear W ~ N(0, 1/fan_in), biases 0, norms weight 1 bias 0."""
    gen = torch.Generator().manual_seed(seed)
    done: set[int] = set()
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            fan_in = m.weight[0].numel()
            m.weight.normal_(0.0, 1.0 / math.sqrt(fan_in), generator=gen)
            done.add(id(m.weight))
            if m.bias is not None:
                m.bias.zero_()
                done.add(id(m.bias))
        elif isinstance(m, (nn.GroupNorm, nn.LayerNorm)):
            if m.weight is not None:
                m.weight.fill_(1.0)
                done.add(id(m.weight))
            if m.bias is not None:
                m.bias.zero_()
                done.add(id(m.bias))
    for name, p in model.named_parameters():
        if id(p) not in done:
            raise RuntimeError(f"parameter {name} not initialised")
    for name, b in model.named_buffers():
        raise RuntimeError(f"unexpected buffer {name}: uninitialised memory after to_empty")


def build_unet(config_path: str, dtype: torch.dtype, seed: int) -> UNet2DConditionModel:
    config = UNet2DConditionModel.load_config(config_path)
    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(config)
    unet = unet.to(dtype=dtype).to_empty(device="cpu")
    init_random_(unet, seed)
    return unet.eval()


def make_inputs(unet: UNet2DConditionModel, height: int, width: int, dtype: torch.dtype, seed: int) -> dict:
    cfg = unet.config
    gen = torch.Generator().manual_seed(seed)
    scale = 2 ** (len(cfg.block_out_channels) - 1)  # latent / pixel factor of the VAE is 8, independent of this
    h, w = height // 8, width // 8
    if h % scale or w % scale:
        print(f"note: latent {h}x{w} is not a multiple of {scale}", file=sys.stderr)
    inputs = {
        "sample": torch.randn(1, cfg.in_channels, h, w, generator=gen).to(dtype),
        "timestep": torch.tensor(999.0),
        "encoder_hidden_states": torch.randn(1, 77, cfg.cross_attention_dim, generator=gen).to(dtype),
    }
    if cfg.addition_embed_type == "text_time":
        n_time = 6 * cfg.addition_time_embed_dim
        text_dim = cfg.projection_class_embeddings_input_dim - n_time
        inputs["added_cond_kwargs"] = {
            "text_embeds": torch.randn(1, text_dim, generator=gen).to(dtype),
            "time_ids": torch.tensor([[height, width, 0, 0, height, width]], dtype=dtype),
        }
    return inputs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True, help="diffusers UNet config.json")
    ap.add_argument("--height", type=int, default=512, help="image height in pixels (latent = height/8)")
    ap.add_argument("--width", type=int, default=512, help="image width in pixels (latent = width/8)")
    ap.add_argument("--precision", choices=sorted(DTYPES) + sorted(CONVERSIONS), default="fp32")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    dtype = DTYPES.get(args.precision) or CONVERSIONS[args.precision]

    t0 = time.perf_counter()
    unet = build_unet(args.config, dtype, args.seed)
    params = sum(p.numel() for p in unet.parameters())   # before conversion: packed int8 weights are no Parameters
    extra = {}
    if args.precision == "dynamic-int8":
        extra["quantized_linears"] = sum(isinstance(m, nn.Linear) for m in unet.modules())
        # In place: a copy would hold a second fp32 model during the conversion.
        torch.ao.quantization.quantize_dynamic(unet, {nn.Linear}, dtype=torch.qint8, inplace=True)
        extra["quantized_engine"] = torch.backends.quantized.engine
    build_s = time.perf_counter() - t0
    inputs = make_inputs(unet, args.height, args.width, dtype, args.seed + 1)

    times = []
    with torch.inference_mode():
        for i in range(args.warmup + args.runs):
            t = time.perf_counter()
            out = unet(**inputs, return_dict=False)[0]
            dt = time.perf_counter() - t
            if i >= args.warmup:
                times.append(dt)
            print(f"{'warmup' if i < args.warmup else 'run'} {i}: {dt:.3f} s", file=sys.stderr)
    if not torch.isfinite(out).all():
        print("warning: non-finite values in the output", file=sys.stderr)

    peak_rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 2**30  # ru_maxrss is KiB on Linux
    result = {
        "runtime": "pytorch",
        "precision": args.precision,
        "median_s": statistics.median(times) if times else None,
        "times": times,
        "peak_rss_gb": round(peak_rss_gb, 3),
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "threads": args.threads,
        "height": args.height,
        "width": args.width,
        "warmup": args.warmup,
        "build_s": round(build_s, 3),
        "params": params,
        "machine": platform.machine(),
        **extra,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
