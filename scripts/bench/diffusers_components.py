#!/usr/bin/env python3
"""Time SDXL's text encoders or VAE decode on CPU: the PyTorch peer of `mixdq bench text-encoder|vae-decoder`.

Builds the component from a config.json with random weights (no download), feeds the same shapes as mixdq and
prints ONE JSON line:

    {"runtime": "pytorch", "component": ..., "precision": "fp32", "median_s": ..., "times": [...],
     "peak_rss_gb": ..., "torch": "..."}

Examples (2 cores):

    python scripts/bench/diffusers_components.py --component text-encoder-2 \
        --config configs/models/sdxl-turbo-text-encoder-2.json --precision fp32 --threads 2 --runs 3 --warmup 1
    python scripts/bench/diffusers_components.py --component vae-decoder \
        --config configs/models/sdxl-turbo-vae.json --height 512 --width 512 --runs 2 --warmup 1

* text-encoder / text-encoder-2: transformers CLIPTextModel / CLIPTextModelWithProjection (from the config's
  `architectures`), called as the SDXL pipeline does: `model(input_ids, output_hidden_states=True)` (every layer,
  final LayerNorm, pooled output and projection). Rows of 77 ids: BOS 49406, 12 + 5b prompt ids, EOS 49407, then
  padding (49407 for CLIPTextModel, 0 with projection): the ids mixdq feeds.
* vae-decoder: diffusers AutoencoderKL without its encoder half; `vae.decode(latents / scaling_factor)` of a
  Gaussian [B, 4, height/8, width/8] latent. fp32 only (SDXL's VAE overflows in reduced precision).

Weights are allocated directly in the target dtype (built on the meta device, cast, then materialised with
to_empty), so a bf16 run never holds an fp32 copy. Linear/Conv weights ~ N(0, 1/fan_in), embeddings ~ N(0, 0.02),
biases 0, norms weight 1. peak_rss_gb is the process's ru_maxrss in GiB (2^30 bytes).
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

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@torch.no_grad()
def init_random_(model: nn.Module, seed: int) -> None:
    """Fill every parameter in place and reset the known buffers; raise on anything left uninitialised."""
    gen = torch.Generator().manual_seed(seed)
    done: set[int] = set()

    def fill(p: torch.Tensor, fn) -> None:
        # Generate in fp32 (normal_ with a CPU generator works for every dtype, but keep the values dtype-independent).
        tmp = torch.empty(p.shape, dtype=torch.float32)
        fn(tmp)
        p.copy_(tmp)
        done.add(id(p))

    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            std = 1.0 / math.sqrt(m.weight[0].numel())
            fill(m.weight, lambda t: t.normal_(0.0, std, generator=gen))
            if m.bias is not None:
                fill(m.bias, lambda t: t.zero_())
        elif isinstance(m, nn.Embedding):
            fill(m.weight, lambda t: t.normal_(0.0, 0.02, generator=gen))
        elif isinstance(m, (nn.GroupNorm, nn.LayerNorm)):
            if m.weight is not None:
                fill(m.weight, lambda t: t.fill_(1.0))
            if m.bias is not None:
                fill(m.bias, lambda t: t.zero_())
    for name, p in model.named_parameters():
        if id(p) not in done:
            raise RuntimeError(f"parameter {name} not initialised")
    for name, b in model.named_buffers():
        if name.endswith("position_ids"):
            b.copy_(torch.arange(b.shape[-1], dtype=b.dtype).expand_as(b))
        else:
            raise RuntimeError(f"unexpected buffer {name}: uninitialised memory after to_empty")


def token_ids(batch: int, length: int, vocab_size: int, pad_with_zero: bool) -> torch.Tensor:
    """The rows `BenchTokenIDs.rows` builds in mixdq (BenchComponentsCommand.swift)."""
    bos, eos = min(49406, vocab_size - 2), min(49407, vocab_size - 1)
    pad = 0 if pad_with_zero else eos
    rows = []
    for b in range(batch):
        n = min(12 + 5 * b, length - 2)
        row = [bos] + [1 + (i * 7919 + b * 104729) % max(1, bos - 1) for i in range(n)] + [eos]
        row += [pad] * (length - len(row))
        rows.append(row[:length])
    return torch.tensor(rows, dtype=torch.long)


def build_text_encoder(config_path: str, dtype: torch.dtype, seed: int):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig.from_json_file(config_path)
    with_projection = "CLIPTextModelWithProjection" in (config.architectures or [])
    cls = CLIPTextModelWithProjection if with_projection else CLIPTextModel
    with torch.device("meta"):
        model = cls(config)
    model = model.to(dtype=dtype).to_empty(device="cpu")
    init_random_(model, seed)
    return model.eval(), with_projection


def build_vae_decoder(config_path: str, seed: int):
    from diffusers import AutoencoderKL

    config = AutoencoderKL.load_config(config_path)
    with torch.device("meta"):
        vae = AutoencoderKL.from_config(config)
    vae.encoder = None                     # decode never touches the encoder half: do not allocate it
    vae.quant_conv = None
    vae = vae.to_empty(device="cpu")
    init_random_(vae, seed)
    return vae.eval()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--component", required=True, choices=["text-encoder", "text-encoder-2", "vae-decoder"])
    ap.add_argument("--config", required=True, help="transformers CLIPTextConfig or diffusers AutoencoderKL config.json")
    ap.add_argument("--height", type=int, default=512, help="VAE: image height in pixels (latent = height/8)")
    ap.add_argument("--width", type=int, default=512, help="VAE: image width in pixels (latent = width/8)")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--precision", choices=sorted(DTYPES), default="fp32")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    dtype = DTYPES[args.precision]
    is_vae = args.component == "vae-decoder"
    if is_vae and args.precision != "fp32":
        ap.error("the VAE decoder runs in fp32 only (SDXL's VAE overflows in reduced precision)")

    t0 = time.perf_counter()
    if is_vae:
        model = build_vae_decoder(args.config, args.seed)
        gen = torch.Generator().manual_seed(args.seed + 1)
        latents = torch.randn(args.batch, model.config.latent_channels, args.height // 8, args.width // 8, generator=gen)

        def forward():
            return model.decode(latents / model.config.scaling_factor, return_dict=False)[0]
    else:
        model, with_projection = build_text_encoder(args.config, dtype, args.seed)
        if with_projection != (args.component == "text-encoder-2"):
            print(f"note: --component {args.component} but the config builds "
                  f"{'CLIPTextModelWithProjection' if with_projection else 'CLIPTextModel'}", file=sys.stderr)
        ids = token_ids(args.batch, min(77, model.config.max_position_embeddings), model.config.vocab_size, with_projection)

        def forward():
            out = model(input_ids=ids, output_hidden_states=True)
            return out.hidden_states[-2]
    build_s = time.perf_counter() - t0

    times = []
    with torch.inference_mode():
        for i in range(args.warmup + args.runs):
            t = time.perf_counter()
            out = forward()
            dt = time.perf_counter() - t
            if i >= args.warmup:
                times.append(dt)
            print(f"{'warmup' if i < args.warmup else 'run'} {i}: {dt:.3f} s", file=sys.stderr)
    if not torch.isfinite(out).all():
        print("warning: non-finite values in the output", file=sys.stderr)

    peak_rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 2**30  # ru_maxrss is KiB on Linux
    result = {
        "runtime": "pytorch",
        "component": args.component,
        "precision": args.precision,
        "median_s": statistics.median(times) if times else None,
        "times": times,
        "peak_rss_gb": round(peak_rss_gb, 3),
        "torch": torch.__version__,
        "threads": args.threads,
        "batch": args.batch,
        "warmup": args.warmup,
        "build_s": round(build_s, 3),
        "params": sum(p.numel() for p in model.parameters()),
        "machine": platform.machine(),
    }
    if is_vae:
        import diffusers
        result.update(height=args.height, width=args.width, diffusers=diffusers.__version__)
    else:
        import transformers
        result["transformers"] = transformers.__version__
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
