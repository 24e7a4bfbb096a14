#!/usr/bin/env bash
# Retrains the shipped model's UNet stage from its seeds (train.sh --unet-only, on the shipped VAE) into
# RUN_DIR, then scores the retrained and the committed pipeline with the same checker on the same held-out
# captions and seeds, and says whether every attribute agrees within sampling noise: the acceptance check
# "retraining from the script reproduces the committed weights' evaluation". The shipped files are not touched.
#   scripts/train/reproduce.sh [RUN_DIR]     (default: ../train-reproduce beside the repository)
# Env: SEEDS (4: 50 captions x 4 seeds = 200 images per row), PYTHON / MIXDQ_REFERENCE_PYTHON as train.sh.
# Resumable: the training resumes from RUN_DIR's checkpoints; a finished export is reused.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
RUN="${1:-$ROOT/../train-reproduce}"
SEEDS="${SEEDS:-4}"
PYTHON="${PYTHON:-${MIXDQ_REFERENCE_PYTHON:-$ROOT/.venv-reference/bin/python}}"
export PYTHON
mkdir -p "$RUN"
RUN="$(cd "$RUN" && pwd)"
[ -f "$RUN/export/model_index.json" ] || bash "$HERE/train.sh" --unet-only --export "$RUN/export" "$RUN"
cd "$HERE"
export OMP_WAIT_POLICY=PASSIVE
"$PYTHON" evaluate.py --model "$ROOT/assets/trained-tiny-sdxl" --seeds "$SEEDS" --json "$RUN/eval_committed.json"
"$PYTHON" evaluate.py --model "$RUN/export" --seeds "$SEEDS" --json "$RUN/eval_retrained.json"
"$PYTHON" compare_evaluations.py "$RUN/eval_committed.json" "$RUN/eval_retrained.json" --images $((50 * SEEDS))
