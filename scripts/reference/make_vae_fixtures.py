#!/usr/bin/env python3
"""Generate the tiny-VAE parity fixtures used by the Swift tests (Tests/Fixtures/vae_tiny/).

Writes:

    Tests/Fixtures/vae_tiny/vae/config.json
    Tests/Fixtures/vae_tiny/vae/diffusion_pytorch_model.safetensors   F16, every AutoencoderKL key (encoder too,
                                                                      so diffusers' from_pretrained loads it as is)
    Tests/Fixtures/vae_tiny/io.safetensors        batch 2, latent 8x12: `latents`, `out` + the small intermediates
    Tests/Fixtures/vae_tiny/io_small.safetensors  batch 1, latent 6x4:  `latents`, `out` + every intermediate
    Tests/Fixtures/vae_tiny/encoder_layout.json   encoder + quant_conv keys and shapes, read from diffusers, for the
                                                  tiny config and the real SDXL VAE config (meta device)

`latents` are scheduler latents; the goldens are what StableDiffusionXLPipeline does with them:
    out = vae.decode(latents / vae.config.scaling_factor).sample
computed in float32 from the F16-rounded weights (the saved folder reloaded with torch_dtype=float32).
The per-block intermediates of batch 2 at 8x12 would push the folder past 4 MB, so the large ones
(up_block.1..3) come from the smaller batch-1 input only.

Run once with the reference venv and commit the outputs; CI never needs torch:

    scripts/reference/setup_venv.sh
    .venv-reference/bin/python scripts/reference/make_vae_fixtures.py

Deterministic (fixed seeds, one CPU thread); ends with a self-check that reloads what it wrote and recomputes every
golden (max abs diff must be exactly 0).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import torch
from torch import nn

import diffusers
import safetensors
from diffusers import AutoencoderKL
from safetensors.torch import load_file, save_file

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO_ROOT / "Tests" / "Fixtures" / "vae_tiny"

# sdxl-architecture.md §8.2: 4 levels (scale factor 8, like the real VAE); the 64->32 transitions exercise
# conv_shortcut; 32 groups as in the real model.
TINY = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4,
    block_out_channels=(32, 32, 64, 64),
    layers_per_block=2,
    act_fn="silu",
    latent_channels=4,
    norm_num_groups=32,
    sample_size=64,
    scaling_factor=0.13025,
    force_upcast=True,
)

# The real sdxl-turbo vae/config.json (sdxl-architecture.md §1.7); only used on the meta device.
SDXL = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4,
    block_out_channels=(128, 256, 512, 512),
    layers_per_block=2,
    act_fn="silu",
    latent_channels=4,
    norm_num_groups=32,
    sample_size=1024,
    scaling_factor=0.13025,
    force_upcast=True,
)

WEIGHT_SEED = 3
IO_SEED = 300
IO_SMALL_SEED = 301
IO_SHAPE = (2, 4, 8, 12)        # non-square
IO_SMALL_SHAPE = (1, 4, 6, 4)   # taller than wide: the other orientation
IO_INTERMEDIATES = ["post_quant_conv", "conv_in", "mid", "up_block.0"]


@torch.no_grad()
def randomise_(model: nn.Module, gen: torch.Generator) -> None:
    """Same rule as make_unet_fixtures.py: Conv/Linear W ~ N(0, 1/fan_in), biases 0.1*N;
    GroupNorm weights 1 + 0.2*N, biases 0.2*N (non-trivial affine terms), in named_modules() order."""
    touched: set[int] = set()

    def fill(p: torch.Tensor, mean: float, std: float) -> None:
        p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float32) * std + mean)
        touched.add(id(p))

    for _, m in model.named_modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            fill(m.weight, 0.0, 1.0 / math.sqrt(m.weight[0].numel()))
            if m.bias is not None:
                fill(m.bias, 0.0, 0.1)
        elif isinstance(m, (nn.GroupNorm, nn.LayerNorm)):
            fill(m.weight, 1.0, 0.2)
            fill(m.bias, 0.0, 0.2)
    missed = [n for n, p in model.named_parameters() if id(p) not in touched]
    if missed:
        raise RuntimeError(f"parameters not randomised: {missed}")


def _f32(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to(torch.float32).contiguous().clone()


@torch.no_grad()
def run_decode(vae: AutoencoderKL, latents: torch.Tensor, names: list[str] | None) -> dict[str, torch.Tensor]:
    """`out` = the pipeline's decode of scheduler latents; `names` selects hooked intermediates (all if None)."""
    caps: dict[str, torch.Tensor] = {}
    hooked = {"post_quant_conv": vae.post_quant_conv, "conv_in": vae.decoder.conv_in, "mid": vae.decoder.mid_block}
    for i, blk in enumerate(vae.decoder.up_blocks):
        hooked[f"up_block.{i}"] = blk
    wanted = list(hooked) if names is None else names
    handles = []
    for n in wanted:
        handles.append(hooked[n].register_forward_hook(lambda _m, _a, out, n=n: caps.__setitem__(n, out)))
    try:
        # StableDiffusionXLPipeline.__call__ (diffusers 0.42.1): latents / scaling_factor (no latents_mean/std,
        # shift_factor unused), then vae.decode(...).sample.
        out = vae.decode(latents / vae.config.scaling_factor, return_dict=False)[0]
    finally:
        for h in handles:
            h.remove()
    return {"out": _f32(out), **{n: _f32(caps[n]) for n in wanted}}


def encoder_layout(config: dict) -> tuple[dict, dict[str, list[int]]]:
    """The encoder half (encoder.*, quant_conv.*) of AutoencoderKL(**config), built on the meta device."""
    with torch.device("meta"):
        vae = AutoencoderKL(**config)
    tensors = {k: list(v.shape) for k, v in vae.state_dict().items()
               if k.startswith("encoder.") or k.startswith("quant_conv.")}
    return dict(vae.config), tensors


def expected_encoder_layout(cfg: dict) -> dict[str, list[int]]:
    """The rule AutoencoderKLEncoderLayout.swift implements, transcribed, to cross-check against diffusers."""
    t: dict[str, list[int]] = {}
    ch, layers, lat = list(cfg["block_out_channels"]), cfg["layers_per_block"], cfg["latent_channels"]

    def conv(name, cin, cout, k):
        t[f"{name}.weight"] = [cout, cin, k, k]
        t[f"{name}.bias"] = [cout]

    def norm(name, c):
        t[f"{name}.weight"] = [c]
        t[f"{name}.bias"] = [c]

    def resnet(p, cin, cout):
        norm(f"{p}.norm1", cin); conv(f"{p}.conv1", cin, cout, 3)
        norm(f"{p}.norm2", cout); conv(f"{p}.conv2", cout, cout, 3)
        if cin != cout:
            conv(f"{p}.conv_shortcut", cin, cout, 1)

    conv("encoder.conv_in", cfg["in_channels"], ch[0], 3)
    out = ch[0]
    for i in range(len(ch)):
        cin, out = out, ch[i]
        for j in range(layers):
            resnet(f"encoder.down_blocks.{i}.resnets.{j}", cin if j == 0 else out, out)
        if i < len(ch) - 1:
            conv(f"encoder.down_blocks.{i}.downsamplers.0.conv", out, out, 3)
    c = ch[-1]
    resnet("encoder.mid_block.resnets.0", c, c)
    if cfg.get("mid_block_add_attention", True):
        norm("encoder.mid_block.attentions.0.group_norm", c)
        for n in ("to_q", "to_k", "to_v", "to_out.0"):
            t[f"encoder.mid_block.attentions.0.{n}.weight"] = [c, c]
            t[f"encoder.mid_block.attentions.0.{n}.bias"] = [c]
    resnet("encoder.mid_block.resnets.1", c, c)
    norm("encoder.conv_norm_out", c)
    conv("encoder.conv_out", c, 2 * lat, 3)
    if cfg.get("use_quant_conv", True):
        conv("quant_conv", 2 * lat, 2 * lat, 1)
    return t


def write_encoder_layouts(out_dir: Path) -> bool:
    ok = True
    doc = {}
    for name, cfg in (("vae_tiny", TINY), ("sdxl_vae", SDXL)):
        full_cfg, tensors = encoder_layout(cfg)
        expected = expected_encoder_layout(full_cfg)
        missing = sorted(set(tensors) - set(expected))
        extra = sorted(set(expected) - set(tensors))
        wrong = sorted(k for k in set(tensors) & set(expected) if tensors[k] != expected[k])
        params = sum(math.prod(s) for s in tensors.values())
        same = not (missing or extra or wrong)
        ok &= same
        print(f"[encoder layout {name}] diffusers {len(tensors)} tensors, {params:,} params; "
              f"rule {len(expected)} tensors -> {'MATCH' if same else 'MISMATCH'}"
              f"{'' if same else f' missing {missing[:5]} extra {extra[:5]} wrong {wrong[:5]}'}")
        cfg_json = {k: (list(v) if isinstance(v, tuple) else v) for k, v in full_cfg.items() if not k.startswith("_")}
        doc[name] = {"config": cfg_json, "parameters": params, "tensors": dict(sorted(tensors.items()))}
    # One tensor per line: readable diffs when diffusers changes.
    lines = ["{"]
    for i, (name, entry) in enumerate(sorted(doc.items())):
        lines.append(f' "{name}": {{')
        lines.append(f'  "config": {json.dumps(entry["config"], sort_keys=True)},')
        lines.append(f'  "parameters": {entry["parameters"]},')
        lines.append('  "tensors": {')
        items = list(entry["tensors"].items())
        for j, (k, shape) in enumerate(items):
            lines.append(f'   {json.dumps(k)}: {json.dumps(shape)}{"," if j < len(items) - 1 else ""}')
        lines.append("  }")
        lines.append(" }" + ("," if i < len(doc) - 1 else ""))
    lines.append("}")
    text = "\n".join(lines) + "\n"
    if json.loads(text) != doc:
        raise RuntimeError("encoder_layout.json does not round-trip")
    (out_dir / "encoder_layout.json").write_text(text)
    return ok


def build(out_dir: Path) -> None:
    vae_dir = out_dir / "vae"
    torch.manual_seed(WEIGHT_SEED)
    vae = AutoencoderKL(**TINY).eval()
    randomise_(vae, torch.Generator().manual_seed(WEIGHT_SEED))
    vae = vae.to(torch.float16)
    vae.save_pretrained(vae_dir, safe_serialization=True)

    # Reference in float32 from the rounded weights: reload exactly what Swift will load.
    ref = AutoencoderKL.from_pretrained(vae_dir, torch_dtype=torch.float32).eval()
    mem = {k: v.to(torch.float32) for k, v in vae.state_dict().items()}
    for k, v in ref.state_dict().items():
        if not torch.equal(v, mem[k]):
            raise RuntimeError(f"reloaded weight {k} differs from the rounded in-memory weight")

    for fname, seed, shape, names in (("io.safetensors", IO_SEED, IO_SHAPE, IO_INTERMEDIATES),
                                      ("io_small.safetensors", IO_SMALL_SEED, IO_SMALL_SHAPE, None)):
        latents = torch.randn(*shape, generator=torch.Generator().manual_seed(seed))
        outputs = run_decode(ref, latents, names)
        save_file({"latents": latents, **outputs}, str(out_dir / fname),
                  metadata={"generator": f"scripts/reference/make_vae_fixtures.py ({fname})"})
        print(f"[{fname}] latents {list(shape)}")
        for k, v in outputs.items():
            print(f"    {k:16s} {str(list(v.shape)):18s} max|x| {v.abs().max().item():9.4f}  "
                  f"rms {v.pow(2).mean().sqrt().item():8.4f}")

    dec = sum(p.numel() for n, p in ref.named_parameters() if n.startswith(("decoder.", "post_quant_conv.")))
    total = sum(p.numel() for p in ref.parameters())
    wfile = vae_dir / "diffusion_pytorch_model.safetensors"
    print(f"[vae_tiny] params {total:,} (decoder + post_quant_conv {dec:,})  tensors {len(ref.state_dict())}  "
          f"weights F16 {wfile.stat().st_size:,} B")


def self_check(out_dir: Path) -> float:
    vae = AutoencoderKL.from_pretrained(out_dir / "vae", torch_dtype=torch.float32).eval()
    worst = 0.0
    for fname in ("io.safetensors", "io_small.safetensors"):
        stored = load_file(str(out_dir / fname))
        names = [k for k in stored if k not in ("latents", "out")]
        again = run_decode(vae, stored["latents"], names)
        if set(again) != set(stored) - {"latents"}:
            raise RuntimeError(f"{fname}: key mismatch")
        for k, v in again.items():
            worst = max(worst, (v - stored[k]).abs().max().item())
    print(f"[vae_tiny] self-check: max |recomputed - stored| = {worst}")
    return worst


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="fixture folder (default: Tests/Fixtures/vae_tiny)")
    args = ap.parse_args()

    torch.set_num_threads(1)  # one fixed reduction order: goldens reproduce bit for bit
    torch.use_deterministic_algorithms(True)
    print(f"torch {torch.__version__}  diffusers {diffusers.__version__}  safetensors {safetensors.__version__}  "
          f"python {sys.version.split()[0]}")
    args.out.mkdir(parents=True, exist_ok=True)
    build(args.out)
    layout_ok = write_encoder_layouts(args.out)
    worst = self_check(args.out)
    total = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    print(f"total fixture bytes: {total:,}")
    if worst != 0.0 or not layout_ok:
        print("SELF-CHECK FAILED", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
