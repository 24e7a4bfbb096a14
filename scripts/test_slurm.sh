#!/usr/bin/env bash
# End-to-end test of the Slurm job arrays on a real (throwaway, single-node) Slurm: the
# sensitivity array (2 tasks) + the merge job must equal one unsharded `search sensitivity` run
# byte for byte, and the image-generation array (2 tasks) must equal one unsharded fp-infer run.
# Runs on the embedded default model with a small calibration set; needs root (the local
# cluster's daemons) and installs slurm-wlm and munge when missing. About 2-4 minutes on 2 cores.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
bash scripts/bootstrap.sh --deps-only
# The binary as built (in CI: by scripts/test.sh just before); built here only when missing.
[ -x "$ROOT/.build/release/mixdq" ] || swift build -c release --product mixdq
for p in slurm-wlm munge; do
    if ! dpkg -s "$p" >/dev/null 2>&1; then
        echo "installing slurm-wlm munge" >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
        break
    fi
done
MIXDQ="$ROOT/.build/release/mixdq"
WORK="$(mktemp -d)"
cleanup() { bash "$ROOT/scripts/slurm/local_cluster.sh" stop "$WORK/cluster" || true; }
trap cleanup EXIT
SLURM_CONF="$(bash "$ROOT/scripts/slurm/local_cluster.sh" start "$WORK/cluster")"
export SLURM_CONF MIXDQ_ROOT="$ROOT" MIXDQ="$MIXDQ" MIXDQ_CACHE="$WORK/cache"
export OMP_WAIT_POLICY=PASSIVE

# A small calibration set (4 prompts) and its PTQ checkpoint.
CONFIG="$WORK/config.yaml"
sed -e "s|^\( *path:\).*|\1 \"$WORK/calib.h5\"|" -e 's|^\( *n_samples:\).*|\1 4|' -e 's|^\( *batch_size:\).*|\1 2|' \
    -e "s|^\( *captions:\).*|\1 \"$ROOT/assets/coco/captions_mixdq_default.json\"|" configs/sdxl_turbo.yaml > "$CONFIG"
"$MIXDQ" calib-data --config "$CONFIG" > "$WORK/calib.log"
"$MIXDQ" ptq --config "$CONFIG" --outdir "$WORK/ptq" --seed 42 > "$WORK/ptq.log"
export CONFIG

fail() { echo "test_slurm: FAIL: $*" >&2; exit 1; }
mkdir -p "$WORK/logs/slurm"
cd "$WORK"   # sbatch's --output paths (logs/slurm/...) are relative to the submit folder

echo "== sensitivity: a 2-task job array, then the merge job (afterok) =="
LAYERS='^conv_(in|out)$|^mid_block\.resnets\.0\.conv1$|^down_blocks\.1\.attentions\.0\.proj_in$'
export CKPT="$WORK/ptq" TYPE=weight GROUP=quality LAYERS OUT_DIR="$WORK/sens"
jid=$(sbatch --parsable --array=0-1 --cpus-per-task=1 --mem=4G "$ROOT/scripts/slurm/search_sensitivity.sbatch")
sbatch --wait --dependency=afterok:"$jid" --mem=1G "$ROOT/scripts/slurm/search_merge.sbatch" >/dev/null \
    || { cat logs/slurm/*.out >&2; fail "the sensitivity array or its merge failed"; }
# With the array tasks' thread count (--cpus-per-task=1): oneDNN's AVX2 kernels split some
# reductions by thread count, so results are bit-identical for equal ISA and threads only (README).
OMP_NUM_THREADS=1 "$MIXDQ" search sensitivity --config "$CONFIG" --ckpt "$CKPT" --type weight --group quality --layers "$LAYERS" \
    --out "$WORK/unsharded.yaml" 2>/dev/null >/dev/null
cmp "$WORK/sens/weight_quality.yaml" "$WORK/unsharded.yaml" || fail "merged shards differ from the unsharded run"
echo "merged sensitivity of $(grep -c '^model\.' "$WORK/unsharded.yaml") layers == unsharded run"

echo "== batch generation: fp-infer as a 2-task job array =="
MODE=fp BASE_PATH="$WORK/fp_array" NUM_IMGS=5 BATCH_SIZE=2 \
    sbatch --wait --array=0-1 --cpus-per-task=1 --mem=4G "$ROOT/scripts/slurm/generate_images.sbatch" >/dev/null \
    || { cat logs/slurm/*.out >&2; fail "the generation array failed"; }
OMP_NUM_THREADS=1 "$MIXDQ" fp-infer --config "$CONFIG" --base-path "$WORK/fp_single" --num-imgs 5 --batch-size 2 >/dev/null 2>&1
for i in 0 1 2 3 4; do
    cmp "$WORK/fp_array/generated_images/$i.png" "$WORK/fp_single/generated_images/$i.png" || fail "image $i differs"
done
echo "5 images from 2 array tasks == unsharded run"
echo "test_slurm: OK"
