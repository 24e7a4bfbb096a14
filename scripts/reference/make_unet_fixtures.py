#!/usr/bin/env python3
"""Generate the tiny-UNet parity fixtures used by the Swift tests.

Writes, for each of two tiny-but-faithful UNet2DConditionModel configs:

    Tests/Fixtures/<name>/unet/config.json
    Tests/Fixtures/<name>/unet/diffusion_pytorch_model.safetensors   (F16 for SDXL, BF16 for SD1.5)
    Tests/Fixtures/<name>/io.safetensors       batch 2, 16x24 latent, inputs + output + intermediates (F32)
    Tests/Fixtures/<name>/io_b1.safetensors    batch 1, 16x16 latent, inputs + `out` only (F32)

The goldens are computed in float32 from the *rounded* weights (the saved half-precision folder is reloaded
with torch_dtype=float32), so a Swift loader that widens F16/BF16 to F32 sees bit-identical weights.

Run once with the reference venv and commit the outputs; CI never needs torch:

    scripts/reference/setup_venv.sh
    .venv-reference/bin/python scripts/reference/make_unet_fixtures.py

The script is deterministic (fixed seeds, one CPU thread) and ends with a self-check: it reloads what it wrote,
recomputes every golden and requires a max abs diff of exactly 0. See scripts/reference/README.md.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch
from torch import nn

import diffusers
import safetensors
from diffusers import UNet2DConditionModel
from safetensors.torch import load_file, save_file

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO_ROOT / "Tests" / "Fixtures"

# SDXL-style (sdxl-architecture.md §8.2) with transformer depth (1, 1, 2) instead of (1, 2, 3) to keep the file small.
# attention_head_dim is the number of heads (diffusers' naming bug): head size 16 at both attention levels.
SDXL_TINY = dict(
    sample_size=16,
    in_channels=4,
    out_channels=4,
    block_out_channels=(32, 64, 96),
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    mid_block_type="UNetMidBlock2DCrossAttn",
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    layers_per_block=2,
    norm_num_groups=32,
    norm_eps=1e-5,
    attention_head_dim=(2, 4, 6),
    transformer_layers_per_block=(1, 1, 2),
    cross_attention_dim=80,
    use_linear_projection=True,
    addition_embed_type="text_time",
    addition_time_embed_dim=8,
    projection_class_embeddings_input_dim=88,  # 6 * 8 + 40 (text_embeds width)
    flip_sin_to_cos=True,
    freq_shift=0,
)

# SD1.5-style: conv 1x1 proj_in/proj_out, no addition embedding, attention_head_dim = heads (2 heads of 16).
SD15_TINY = dict(
    sample_size=8,
    in_channels=4,
    out_channels=4,
    block_out_channels=(32, 64),
    down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
    layers_per_block=2,
    norm_num_groups=32,
    attention_head_dim=2,
    cross_attention_dim=48,
    use_linear_projection=False,
)

FIXTURES = {
    # name: (config, storage dtype, weight seed, io seed, io_b1 seed, text_embeds width or None)
    "unet_sdxl_tiny": (SDXL_TINY, torch.float16, 0, 100, 200, 40),
    "unet_sd15_tiny": (SD15_TINY, torch.bfloat16, 1, 101, 201, None),
}

SDXL_TIME_IDS = [[128.0, 192.0, 0.0, 0.0, 128.0, 192.0], [128.0, 192.0, 8.0, 16.0, 128.0, 192.0]]
SDXL_TIME_IDS_B1 = [[128.0, 128.0, 0.0, 0.0, 128.0, 128.0]]


@torch.no_grad()
def randomise_(model: nn.Module, gen: torch.Generator) -> None:
    """Overwrite every parameter so that activations stay O(1) and affine terms are non-trivial.

    Conv/Linear weights ~ N(0, 1/fan_in); their biases ~ 0.1*N(0,1).
    GroupNorm/LayerNorm weights ~ 1 + 0.2*N(0,1); their biases ~ 0.2*N(0,1).
    Parameters are visited in named_modules() order, so the result depends only on the seed and the config.
    """
    touched: set[int] = set()

    def fill(p: torch.Tensor, mean: float, std: float) -> None:
        p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float32) * std + mean)
        touched.add(id(p))

    for _, m in model.named_modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            fan_in = m.weight[0].numel()
            fill(m.weight, 0.0, 1.0 / math.sqrt(fan_in))
            if m.bias is not None:
                fill(m.bias, 0.0, 0.1)
        elif isinstance(m, (nn.GroupNorm, nn.LayerNorm)):
            if m.weight is not None:
                fill(m.weight, 1.0, 0.2)
            if m.bias is not None:
                fill(m.bias, 0.0, 0.2)
    missed = [n for n, p in model.named_parameters() if id(p) not in touched]
    if missed:
        raise RuntimeError(f"parameters not randomised: {missed}")


def make_inputs(seed: int, batch: int, h: int, w: int, cross_dim: int, text_dim: int | None,
                timesteps: list[float], time_ids: list[list[float]] | None) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    inputs = {
        "sample": torch.randn(batch, 4, h, w, generator=gen),
        "timestep": torch.tensor(timesteps, dtype=torch.float32),
        "encoder_hidden_states": torch.randn(batch, 77, cross_dim, generator=gen),
    }
    if text_dim is not None:
        inputs["text_embeds"] = torch.randn(batch, text_dim, generator=gen)
        inputs["time_ids"] = torch.tensor(time_ids, dtype=torch.float32)
    return inputs


def _metadata(name: str) -> dict[str, str]:
    # One key only: safetensors writes __metadata__ from a hash map, so several keys come out in a random order
    # and the file would not be byte-reproducible.
    return {"generator": f"scripts/reference/make_unet_fixtures.py ({name})"}


def _f32(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to(torch.float32).contiguous().clone()


@torch.no_grad()
def run_unet(unet: UNet2DConditionModel, inputs: dict[str, torch.Tensor],
             capture: bool) -> dict[str, torch.Tensor]:
    """Forward pass; with capture=True also returns the intermediates named in scripts/reference/README.md."""
    caps: dict[str, torch.Tensor] = {}
    handles = []

    def hook(name):
        def fn(_module, _args, output):
            caps[name] = output
        return fn

    if capture:
        handles.append(unet.time_proj.register_forward_hook(hook("time_proj")))
        handles.append(unet.time_embedding.register_forward_hook(hook("time_emb")))
        if getattr(unet, "add_embedding", None) is not None:
            handles.append(unet.add_time_proj.register_forward_hook(hook("add_time_proj")))
            handles.append(unet.add_embedding.register_forward_hook(hook("aug_emb")))
        handles.append(unet.conv_in.register_forward_hook(hook("conv_in")))
        for k, blk in enumerate(unet.down_blocks):
            handles.append(blk.register_forward_hook(hook(f"down_block.{k}")))
        handles.append(unet.mid_block.register_forward_hook(hook("mid")))
        for k, blk in enumerate(unet.up_blocks):
            handles.append(blk.register_forward_hook(hook(f"up_block.{k}")))

    kwargs = {}
    if "text_embeds" in inputs:
        kwargs["added_cond_kwargs"] = {"text_embeds": inputs["text_embeds"], "time_ids": inputs["time_ids"]}
    try:
        out = unet(inputs["sample"], inputs["timestep"], inputs["encoder_hidden_states"],
                   return_dict=False, **kwargs)[0]
    finally:
        for h in handles:
            h.remove()

    result = {"out": _f32(out)}
    if not capture:
        return result

    result["time_proj"] = _f32(caps["time_proj"])
    result["time_emb"] = _f32(caps["time_emb"])
    if "aug_emb" in caps:
        result["add_time_proj"] = _f32(caps["add_time_proj"])
        result["aug_emb"] = _f32(caps["aug_emb"])
        result["emb"] = _f32(caps["time_emb"] + caps["aug_emb"])
    else:
        result["emb"] = _f32(caps["time_emb"])
    result["conv_in"] = _f32(caps["conv_in"])
    # Skip tensors in push order, exactly diffusers' down_block_res_samples: conv_in output first, then every
    # tensor each down block returns in its res_samples tuple.
    skips = [caps["conv_in"]]
    for k in range(len(unet.down_blocks)):
        hidden, res = caps[f"down_block.{k}"]
        assert hidden is res[-1]
        skips.extend(res)
    for i, s in enumerate(skips):
        result[f"down_block_res.{i}"] = _f32(s)
    result["mid"] = _f32(caps["mid"])
    for k in range(len(unet.up_blocks)):
        result[f"up_block.{k}"] = _f32(caps[f"up_block.{k}"])
    return result


def build_fixture(name: str, out_root: Path) -> None:
    config, store_dtype, w_seed, io_seed, b1_seed, text_dim = FIXTURES[name]
    fixture_dir = out_root / name
    unet_dir = fixture_dir / "unet"

    torch.manual_seed(w_seed)  # covers diffusers' default init, which randomise_ overwrites anyway
    unet = UNet2DConditionModel(**config).eval()
    randomise_(unet, torch.Generator().manual_seed(w_seed))
    unet = unet.to(store_dtype)
    unet.save_pretrained(unet_dir, safe_serialization=True)

    # Reference in float32 from the rounded weights: reload exactly what Swift will load.
    ref = UNet2DConditionModel.from_pretrained(unet_dir, torch_dtype=torch.float32).eval()
    mem = {k: v.to(torch.float32) for k, v in unet.state_dict().items()}
    for k, v in ref.state_dict().items():
        if not torch.equal(v, mem[k]):
            raise RuntimeError(f"{name}: reloaded weight {k} differs from the rounded in-memory weight")

    cross = config["cross_attention_dim"]
    inputs = make_inputs(io_seed, 2, 16, 24, cross, text_dim, [999.0, 499.0],
                         SDXL_TIME_IDS if text_dim else None)
    outputs = run_unet(ref, inputs, capture=True)
    save_file({**inputs, **outputs}, str(fixture_dir / "io.safetensors"),
              metadata=_metadata(name))

    inputs_b1 = make_inputs(b1_seed, 1, 16, 16, cross, text_dim, [999.0],
                            SDXL_TIME_IDS_B1 if text_dim else None)
    out_b1 = run_unet(ref, inputs_b1, capture=False)
    save_file({**inputs_b1, **out_b1}, str(fixture_dir / "io_b1.safetensors"),
              metadata=_metadata(name))

    n_params = sum(p.numel() for p in ref.parameters())
    wfile = unet_dir / "diffusion_pytorch_model.safetensors"
    print(f"[{name}] params {n_params:,}  tensors {len(ref.state_dict())}  weights {store_dtype} "
          f"{wfile.stat().st_size:,} B  io {(fixture_dir / 'io.safetensors').stat().st_size:,} B  "
          f"io_b1 {(fixture_dir / 'io_b1.safetensors').stat().st_size:,} B")
    for k, v in outputs.items():
        print(f"    {k:22s} {str(list(v.shape)):18s} max|x| {v.abs().max().item():9.4f}  "
              f"rms {v.pow(2).mean().sqrt().item():8.4f}")
    print(f"    io_b1 out {list(out_b1['out'].shape)} max|x| {out_b1['out'].abs().max().item():.4f}")


def self_check(name: str, out_root: Path) -> float:
    """Reload the saved folder and io files, recompute, and return the max abs diff over all goldens."""
    fixture_dir = out_root / name
    unet = UNet2DConditionModel.from_pretrained(fixture_dir / "unet", torch_dtype=torch.float32).eval()
    worst = 0.0
    for fname, capture in (("io.safetensors", True), ("io_b1.safetensors", False)):
        stored = load_file(str(fixture_dir / fname))
        input_keys = ["sample", "timestep", "encoder_hidden_states", "text_embeds", "time_ids"]
        inputs = {k: stored[k] for k in input_keys if k in stored}
        again = run_unet(unet, inputs, capture=capture)
        if set(again) != set(stored) - set(inputs):
            raise RuntimeError(f"{name}/{fname}: key mismatch")
        for k, v in again.items():
            d = (v - stored[k]).abs().max().item()
            worst = max(worst, d)
    print(f"[{name}] self-check: max |recomputed - stored| = {worst}")
    return worst


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="fixtures root (default: Tests/Fixtures)")
    ap.add_argument("--only", choices=sorted(FIXTURES), action="append", help="build only this fixture")
    args = ap.parse_args()

    torch.set_num_threads(1)  # one fixed reduction order: goldens reproduce bit for bit
    torch.use_deterministic_algorithms(True)
    print(f"torch {torch.__version__}  diffusers {diffusers.__version__}  safetensors {safetensors.__version__}  "
          f"python {sys.version.split()[0]}")
    names = args.only or list(FIXTURES)
    for name in names:
        build_fixture(name, args.out)
    bad = [n for n in names if self_check(n, args.out) != 0.0]
    total = sum(f.stat().st_size for n in names for f in (args.out / n).rglob("*") if f.is_file())
    print(f"total fixture bytes: {total:,}")
    if bad:
        print(f"SELF-CHECK FAILED for {bad}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
