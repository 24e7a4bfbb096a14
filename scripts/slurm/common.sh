# Shared by the sbatch scripts. Slurm runs a copy of the batch script from its spool folder, so
# the repository is found from MIXDQ_ROOT, else the folder sbatch was called from.
set -euo pipefail
ROOT="${MIXDQ_ROOT:-${SLURM_SUBMIT_DIR:-$(pwd)}}"
cd "$ROOT"
MIXDQ="${MIXDQ:-$ROOT/.build/release/mixdq}"
if [ ! -x "$MIXDQ" ]; then
    echo "error: $MIXDQ not found: build it first (swift build -c release --product mixdq) or set MIXDQ" >&2
    exit 1
fi
# One oneDNN/OpenMP thread per allocated core; idle threads sleep instead of spinning.
export OMP_NUM_THREADS="${SLURM_CPUS_PER_TASK:-${OMP_NUM_THREADS:-2}}"
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
MODEL_ARGS=()
if [ -n "${MODEL:-}" ]; then MODEL_ARGS=(--model "$MODEL"); fi
if [ -n "${CONFIG:-}" ]; then MODEL_ARGS+=(--config "$CONFIG"); fi
