"""Loss curves of a training run as one PNG: VAE loss and PSNR, UNet loss (all and t = 999)
and the held-out 1-step accuracy of the EMA model. A `train.sh --unet-only` run (the shipped VAE,
no VAE log) gets the two UNet panels only."""
from __future__ import annotations

import argparse
import json
import pathlib
import re

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

VAE_LINE = re.compile(r"step (\d+)/\d+ loss ([\d.]+) recon [\d.]+ kl [\d.]+ psnr ([\d.]+)")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--run", type=pathlib.Path, required=True)
    p.add_argument("--output", type=pathlib.Path, required=True)
    args = p.parse_args()
    vae_log = args.run / "vae" / "log.txt"
    vae = [tuple(map(float, m.groups())) for m in map(VAE_LINE.search, vae_log.read_text().splitlines()) if m] if vae_log.exists() else []
    history = json.loads((args.run / "unet" / "history.json").read_text())
    losses = [h for h in history if "loss" in h]
    evals = [h for h in history if "eval_ema_1step" in h]
    fig, axes = plt.subplots(1, 3 if vae else 2, figsize=(15 if vae else 10, 4))
    if vae:
        ax = axes[0]
        ax.plot([v[0] for v in vae], [v[1] for v in vae], label="weighted L1+L2 loss")
        ax.set_xlabel("VAE step (batch 8)"); ax.set_ylabel("loss"); ax.set_title("VAE")
        twin = ax.twinx(); twin.plot([v[0] for v in vae], [v[2] for v in vae], color="tab:orange", label="PSNR (batch)")
        twin.set_ylabel("PSNR dB"); ax.legend(loc="upper center"); twin.legend(loc="center right")
    ax = axes[-2]
    ax.plot([h["step"] for h in losses], [h["loss"] for h in losses], label="v-loss, all timesteps")
    ax.plot([h["step"] for h in losses], [h["loss_t999"] for h in losses], label="v-loss at t = 999")
    ax.set_yscale("log"); ax.set_xlabel("UNet step"); ax.set_title("UNet + text encoders"); ax.legend()
    ax = axes[-1]
    for key in ("background", "colour", "position", "shape", "size", "all"):
        ax.plot([h["step"] for h in evals], [h["eval_ema_1step"][key] for h in evals], marker="o", label=key)
    ax.set_ylim(0, 1.02); ax.set_xlabel("UNet step"); ax.set_title("held-out 1-step accuracy (EMA, quick checker)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.output, dpi=80)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
