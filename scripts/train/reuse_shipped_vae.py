"""Seeds a run folder with the shipped VAE, so that `train.sh --unet-only` retrains only stage 2.

The shipped VAE (assets/trained-tiny-sdxl/vae, fp16) is stage 1's encoder with stage 1b's decoder;
it is written in fp32 as RUN/vae/final (the encoder the UNet's latents come from) and
RUN/vae_decoder/final (what export.py ships).
"""
from __future__ import annotations

import argparse
import pathlib

import torch
from diffusers import AutoencoderKL

import model_configs


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--run", type=pathlib.Path, required=True)
    p.add_argument("--vae", type=pathlib.Path, default=model_configs.REPO / "assets" / "trained-tiny-sdxl" / "vae")
    args = p.parse_args()
    vae = AutoencoderKL.from_pretrained(args.vae, torch_dtype=torch.float32)
    for stage in ("vae", "vae_decoder"):
        folder = args.run / stage / "final"
        if (folder / "config.json").exists():
            print(f"{folder} exists: kept")
            continue
        folder.parent.mkdir(parents=True, exist_ok=True)
        vae.save_pretrained(folder, safe_serialization=True)
        print(f"wrote {folder} from {args.vae}")


if __name__ == "__main__":
    main()
