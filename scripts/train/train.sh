#!/usr/bin/env bash
# Retrains the embedded model from scratch with fixed seeds, then exports it.
#   scripts/train/train.sh [--unet-only] [--export DIR] [RUN_DIR]     (default: ../train-run beside the repository)
# --unet-only: stage 2 alone, on the shipped VAE (reuse_shipped_vae.py writes it into RUN_DIR first).
# --export DIR: write the trained pipeline (and loss_curves.png) there instead of replacing the shipped
# assets/trained-tiny-sdxl and scripts/train/loss_curves.png (reproduce.sh uses it).
# Needs the reference venv (torch, diffusers, transformers, matplotlib): set PYTHON, or
# MIXDQ_REFERENCE_PYTHON, else .venv-reference/bin/python. Every stage resumes from its
# checkpoint when rerun. CPU: 2 threads, niced; OMP_WAIT_POLICY=PASSIVE because OpenMP threads
# that spin-wait are 3-5x slower on a shared machine.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
UNET_ONLY=0
EXPORT="$ROOT/assets/trained-tiny-sdxl"
PLOT="$HERE/loss_curves.png"
while [ $# -gt 0 ]; do
  case "$1" in
    --unet-only) UNET_ONLY=1; shift ;;
    --export) [ $# -ge 2 ] || { echo "train.sh: --export needs a folder" >&2; exit 2; }
              mkdir -p "$2"; EXPORT="$(cd "$2" && pwd)"; PLOT="$EXPORT/loss_curves.png"; shift 2 ;;
    -*) echo "train.sh: unknown option $1 (usage: train.sh [--unet-only] [--export DIR] [RUN_DIR])" >&2; exit 2 ;;
    *) break ;;
  esac
done
RUN="${1:-$ROOT/../train-run}"
PYTHON="${PYTHON:-${MIXDQ_REFERENCE_PYTHON:-$ROOT/.venv-reference/bin/python}}"
export OMP_WAIT_POLICY=PASSIVE
mkdir -p "$RUN"
cd "$HERE"
run() { nice -n 5 "$PYTHON" "$@"; }
[ "$UNET_ONLY" = 0 ] || run reuse_shipped_vae.py --run "$RUN"
[ -d "$RUN/vae/final" ] || run train_vae.py --out "$RUN"
# The decoder fine-tune (encoder frozen, so the UNet's latents do not move) runs beside the UNet.
if [ ! -d "$RUN/vae_decoder/final" ]; then
  run train_vae.py --out "$RUN" --decoder-only --steps 500 --lr 5e-4 --warmup 20 --seed 3 --foreground-weight 8 &
  DECODER=$!
fi
run train_unet.py --out "$RUN"
[ -z "${DECODER:-}" ] || wait "$DECODER"
run export.py --run "$RUN" --output "$EXPORT"
run plot_losses.py --run "$RUN" --output "$PLOT"
