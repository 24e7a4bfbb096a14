#!/usr/bin/env bash
# The mixed-precision search (the original's mixed_precision_scripts/: get_sensitivity.sh,
# integer_program.sh, mixed_precision_infer.sh, final_mixed_precision_infer.sh) on a PTQ run:
#   sensitivity (weight/act x content SSIM / quality SQNR) -> act protection -> tensor ratios ->
#   weight (a, k) scan -> weight selection -> act (a, k) scan under the protect list ->
#   act selection with the chosen weights -> final inference.
# Every stage resumes: sensitivity from its journal, selection from its image cache; the scans
# are deterministic and rewrite the same files. Runs on the embedded default model (the PTQ run of
# scripts/main.sh, made here if missing); MODEL=/path/to/sdxl-turbo for a real one.
#   WEIGHT_TARGET (5) ACT_TARGET (7.7): the original's targets. PROMPTS (32): sensitivity prompts.
#   SELECT_PROMPTS (8): prompts per candidate in selection. SSIM_WINDOW: 511 as the original on a real
#   model, 7 on the embedded model (its 128x128 images are smaller than 511). LOG_NAME (debug_sdxl_turbo).
#   WEIGHT_SCAN / ACT_SCAN: extra allocate-scan flags, e.g. "--a-scan 2 --k-scan 0.46,0.76,3" for a
#   smaller grid than the original's 10 x 10 (weight) and 10 x 20 (act).
source "$(dirname "$0")/common.sh"
BASE="$LOGS/${LOG_NAME:-debug_sdxl_turbo}"
OUT="$BASE/search"
WEIGHT_TARGET="${WEIGHT_TARGET:-5}"
ACT_TARGET="${ACT_TARGET:-7.7}"
PROMPTS="${PROMPTS:-32}"
SELECT_PROMPTS="${SELECT_PROMPTS:-8}"
if [ -n "${MODEL:-}" ]; then SIZE="${SIZE:-512}"; SSIM_WINDOW="${SSIM_WINDOW:-511}"; else SIZE="${SIZE:-128}"; SSIM_WINDOW="${SSIM_WINDOW:-7}"; fi

if [ ! -f "$BASE/ckpt.safetensors" ]; then
    bash "$ROOT/scripts/main_calib_data.sh"
    bash "$ROOT/scripts/main_ptq.sh" "${LOG_NAME:-debug_sdxl_turbo}"
fi
mkdir -p "$OUT"
CKPT_ARGS=(--ckpt "$BASE" "${MODEL_ARGS[@]}")

# 1. Sensitivity (get_sensitivity.sh): one layer quantized at a time, at 2, 4 and 8 bits.
for type in weight act; do
    "$MIXDQ" search sensitivity "${CKPT_ARGS[@]}" --type "$type" --group content --prompts "$PROMPTS" \
        --ssim-window "$SSIM_WINDOW" --out "$OUT/sensitivity_${type}_content.yaml"
    "$MIXDQ" search sensitivity "${CKPT_ARGS[@]}" --type "$type" --group quality --out "$OUT/sensitivity_${type}_quality.yaml"
done

# 2. Act protection: the 5 content layers with the lowest 8-bit act SSIM, the 4 quality layers with the lowest SQNR.
"$MIXDQ" search protect --sensitivity-content "$OUT/sensitivity_act_content.yaml" \
    --sensitivity-quality "$OUT/sensitivity_act_quality.yaml" "${MODEL_ARGS[@]}" --out "$OUT/act_protect.yaml"

# 3. Tensor ratios (the original's optimize/tensor_ratio/), measured on the model.
"$MIXDQ" search ratios "${MODEL_ARGS[@]}" --type weight --out "$OUT/ratio_weight.yaml"
"$MIXDQ" search ratios "${MODEL_ARGS[@]}" --type act --height "$SIZE" --width "$SIZE" --out "$OUT/ratio_act.yaml"

# 4. Weights (integer_program.sh + mixed_precision_infer.sh): the (a, k) grid, then the candidate
#    closest to FP over SELECT_PROMPTS prompts, activations unquantized as in the original's weight phase.
# shellcheck disable=SC2086
"$MIXDQ" search allocate-scan --type weight --target "$WEIGHT_TARGET" ${WEIGHT_SCAN:-} \
    --content-scores "$OUT/sensitivity_weight_content.yaml" --quality-scores "$OUT/sensitivity_weight_quality.yaml" \
    --ratio "$OUT/ratio_weight.yaml" --out "$OUT/candidates_weight"
"$MIXDQ" search select --type weight --dir "$OUT/candidates_weight" --prompts "$SELECT_PROMPTS" --ratio "$OUT/ratio_weight.yaml" \
    "${CKPT_ARGS[@]}" --out "$OUT/final_weight_mp.yaml"

# 5. Activations under the chosen weights, the protected layers left out of the programme and kept FP.
# shellcheck disable=SC2086
"$MIXDQ" search allocate-scan --type act --target "$ACT_TARGET" ${ACT_SCAN:-} \
    --content-scores "$OUT/sensitivity_act_content.yaml" --quality-scores "$OUT/sensitivity_act_quality.yaml" \
    --ratio "$OUT/ratio_act.yaml" --exclude "$OUT/act_protect.yaml" --out "$OUT/candidates_act"
"$MIXDQ" search select --type act --dir "$OUT/candidates_act" --config-weight-mp "$OUT/final_weight_mp.yaml" \
    --act-protect "$OUT/act_protect.yaml" --prompts "$SELECT_PROMPTS" --ratio "$OUT/ratio_act.yaml" \
    "${CKPT_ARGS[@]}" --out "$OUT/final_act_mp.yaml"

# 6. Final inference (final_mixed_precision_infer.sh).
"$MIXDQ" infer --base-path "$BASE" "${MODEL_ARGS[@]}" --config-weight-mp "$OUT/final_weight_mp.yaml" \
    --config-act-mp "$OUT/final_act_mp.yaml" --act-protect "$OUT/act_protect.yaml" \
    --image-folder "$OUT/final_images" --num-imgs 8 --batch-size 2
echo "final configs: $OUT/final_weight_mp.yaml $OUT/final_act_mp.yaml $OUT/act_protect.yaml"
echo "reports: $OUT/select_weight/report.md $OUT/select_act/report.md (contact sheets, Pareto plots beside them); images: $OUT/final_images"
