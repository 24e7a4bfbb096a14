"""Stage 3: the trained pipeline in diffusers format.

Writes RUN/export/fp32 (save_pretrained, fp32, with tokenizers: the reference for parity checks)
and the shipped folder OUTPUT (fp16 safetensors + configs, no tokenizer/ folders: `mixdq
default-model` writes them from assets/clip-bpe, so the 3.5 MB vocabulary is stored once).
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import tempfile

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextModel, CLIPTextModelWithProjection

import model_configs
from train_unet import build_pipeline

SHIPPED_COMPONENTS = ("model_index.json", "scheduler", "unet", "text_encoder", "text_encoder_2", "vae")


def vae_folder(run: pathlib.Path) -> pathlib.Path:
    """The decoder-fine-tuned VAE when that stage ran (same encoder, so the same latents)."""
    tuned = run / "vae_decoder" / "final"
    return tuned if (tuned / "config.json").exists() else run / "vae" / "final"


def load_pipeline(run: pathlib.Path, weights: pathlib.Path):
    vae = AutoencoderKL.from_pretrained(vae_folder(run))
    state = torch.load(weights, weights_only=False)
    unet = UNet2DConditionModel(**model_configs.unet_config())
    text_encoder = CLIPTextModel(model_configs.text_encoder_config(second=False))
    text_encoder_2 = CLIPTextModelWithProjection(model_configs.text_encoder_config(second=True))
    unet.load_state_dict(state["unet"])
    text_encoder.load_state_dict(state["text_encoder"])
    text_encoder_2.load_state_dict(state["text_encoder_2"])
    pipeline = build_pipeline(vae, text_encoder, text_encoder_2, unet)
    return pipeline, state["step"]


def save_replacing(pipeline, folder: pathlib.Path, keep=None) -> None:
    """save_pretrained into a temporary folder beside `folder`, then swap it in."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    pipeline.save_pretrained(tmp, safe_serialization=True)
    for config in tmp.rglob("config.json"):
        # diffusers records where a component was loaded from: a path of this machine.
        values = json.loads(config.read_text())
        if values.pop("_name_or_path", None) is not None:
            config.write_text(json.dumps(values, indent=2, sort_keys=True) + "\n")
    if keep is not None:
        for entry in list(tmp.iterdir()):
            if entry.name not in keep:
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    if folder.exists():
        old = folder.with_name(f".{folder.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(folder, old)
        os.replace(tmp, folder)
        shutil.rmtree(old)
    else:
        os.replace(tmp, folder)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--run", type=pathlib.Path, required=True, help="training output folder (train_vae/train_unet --out)")
    p.add_argument("--weights", type=pathlib.Path, help="EMA weights file (default RUN/unet/ema_latest.pt)")
    p.add_argument("--output", type=pathlib.Path, required=True, help="the shipped fp16 folder")
    args = p.parse_args()
    pipeline, step = load_pipeline(args.run, args.weights or args.run / "unet" / "ema_latest.pt")
    save_replacing(pipeline, args.run / "export" / "fp32")
    save_replacing(pipeline.to(torch.float16), args.output, keep=SHIPPED_COMPONENTS)
    size = sum(f.stat().st_size for f in args.output.rglob("*") if f.is_file())
    print(f"exported step {step}: {args.run / 'export' / 'fp32'} and {args.output} ({size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
