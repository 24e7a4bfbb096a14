#!/usr/bin/env bash
# Issue 10's quality table on the embedded trained model: FP and every quantized setting on the 50
# held-out captions (scripts/train/heldout_captions.txt, never trained on) x 2 seeds, at 1 and 4
# steps; `mixdq eval-table` scores each against FP of the same seed (SSIM, PSNR) and against the
# captions (the synthetic-shapes checker), and draws a contact sheet.
#   scripts/quality_table.sh [OUT]        (default: logs/quality_table)
# Writes OUT/steps<N>/{table.md,table.csv,contact_sheet.png} and the images behind them. Each step
# skips work whose output exists (rerun after a kill resumes; delete OUT to start over).
source "$(dirname "$0")/common.sh"
if [ -n "${MODEL:-}" ] || [ "${MIXDQ_DEFAULT_MODEL:-trained}" != trained ]; then
    echo "quality_table.sh scores synthetic-shapes images: it runs on the embedded trained model only" >&2
    exit 2
fi
OUT="$(mkdir -p "${1:-$LOGS/quality_table}" && cd "${1:-$LOGS/quality_table}" && pwd)"
HELDOUT="$ROOT/scripts/train/heldout_captions.txt"
SEARCHED="$ROOT/mixed_precision_configs/trained-tiny-sdxl"
SEEDS=(0 1000)     # image i of seed s uses s + i: two disjoint sets of 50 noises
IMAGES="${IMAGES:-50}"   # held-out captions used (all 50 by default)

# Uniform 4-bit weights: every layer the model quantizes, from its ratio file.
UNIFORM4="$OUT/uniform_w4.yaml"
if [ ! -f "$UNIFORM4" ]; then
    "$MIXDQ" search ratios --type weight --out "$OUT/ratio_weight.yaml"
    sed -E 's/^(model\.[^:]+):.*/\1: 4/' "$OUT/ratio_weight.yaml" > "$UNIFORM4.tmp" && mv "$UNIFORM4.tmp" "$UNIFORM4"
fi

# A copy of the domain's config with absolute paths, `steps` denoising steps and BOS-aware on/off.
write_config() {  # steps bos_aware file
    sed -e "s|path: \"../outputs/calib/trained_tiny_calib.h5\"|path: \"$OUT/steps$1/calib.h5\"|" \
        -e "s|captions: \"../assets/shapes/calibration_captions.txt\"|captions: \"$ROOT/assets/shapes/calibration_captions.txt\"|" \
        -e "s|n_steps: 1|n_steps: $1|" -e "s|bos_aware: True|bos_aware: $2|" "$CONFIG" > "$3"
    grep -q "n_steps: $1" "$3" && grep -q "bos_aware: $2" "$3" && grep -q "$OUT/steps$1/calib.h5" "$3" \
        || { echo "quality_table.sh: $CONFIG no longer has the lines this script rewrites" >&2; exit 1; }
}

# infer NAME PTQ_DIR [infer options...]: the setting's images for every seed.
infer() {
    local name="$1" ptq="$2"; shift 2
    for seed in "${SEEDS[@]}"; do
        local folder="$STEPDIR/$name/seed$seed"
        [ -f "$folder/$((IMAGES - 1)).png" ] && continue
        "$MIXDQ" infer --base-path "$ptq" --captions "$HELDOUT" --num-imgs "$IMAGES" --batch-size 10 --seed "$seed" \
            --image-folder "$folder" "$@"
    done
}
folders() { local IFS=,; local list=(); for seed in "${SEEDS[@]}"; do list+=("$STEPDIR/$1/seed$seed"); done; echo "${list[*]}"; }

for steps in 1 4; do
    STEPDIR="$OUT/steps$steps"
    mkdir -p "$STEPDIR"
    write_config "$steps" True "$STEPDIR/bos.yaml"
    write_config "$steps" False "$STEPDIR/nobos.yaml"
    [ -f "$STEPDIR/calib.h5" ] || "$MIXDQ" calib-data --config "$STEPDIR/bos.yaml"
    for variant in bos nobos; do
        [ -f "$STEPDIR/ptq_$variant/ckpt.safetensors" ] || "$MIXDQ" ptq --config "$STEPDIR/$variant.yaml" --outdir "$STEPDIR/ptq_$variant" --seed 42
    done
    for seed in "${SEEDS[@]}"; do
        folder="$STEPDIR/FP/seed$seed"
        [ -f "$folder/$((IMAGES - 1)).png" ] || "$MIXDQ" fp-infer --config "$STEPDIR/bos.yaml" --captions "$HELDOUT" \
            --num-imgs "$IMAGES" --batch-size 10 --seed "$seed" --base-path "$STEPDIR/FP" --image-folder "$folder"
    done
    infer W8A8 "$STEPDIR/ptq_bos"
    infer "W8A8 BOS-unaware" "$STEPDIR/ptq_nobos"
    infer W4A8 "$STEPDIR/ptq_bos" --config-weight-mp "$UNIFORM4"
    infer W8A16 "$STEPDIR/ptq_bos" --skip-quant-act
    infer W4A16 "$STEPDIR/ptq_bos" --config-weight-mp "$UNIFORM4" --skip-quant-act
    infer "searched W3.99 A16" "$STEPDIR/ptq_bos" --config-weight-mp "$SEARCHED/weight_3.99.yaml" --skip-quant-act
    infer "searched W5.02 A7.68" "$STEPDIR/ptq_bos" --config-weight-mp "$SEARCHED/weight_5.02.yaml" \
        --config-act-mp "$SEARCHED/act_7.68.yaml" --act-protect "$SEARCHED/act_protect.yaml"
    settings=()
    for name in W8A8 "W8A8 BOS-unaware" W4A8 W8A16 W4A16 "searched W3.99 A16" "searched W5.02 A7.68"; do
        settings+=(--setting "$name=$(folders "$name")")
    done
    "$MIXDQ" eval-table --reference "FP=$(folders FP)" "${settings[@]}" --captions "$HELDOUT" --ssim-windows 7 \
        --markdown "$STEPDIR/table.md" --csv "$STEPDIR/table.csv" --sheet "$STEPDIR/contact_sheet.png" \
        --title "embedded trained model, $steps step(s): FP vs each setting (held-out captions, seed ${SEEDS[0]})"
done
echo "tables: $OUT/steps1/table.md $OUT/steps4/table.md"
