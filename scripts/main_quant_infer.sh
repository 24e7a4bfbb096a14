#!/usr/bin/env bash
# Quantized generation (the original main_quant_infer.sh): W8A8 with the mixed-precision files
# weight_8.00.yaml / act_8.00.yaml / act_protect.yaml when present for this model, else uniform W8A8.
source "$(dirname "$0")/common.sh"
BASE="$LOGS/${LOG_NAME:-debug_sdxl_turbo}"
MP_ARGS=()
if [ -n "${MODEL:-}" ] && [ -f "$ROOT/mixed_precision_configs/sdxl_turbo/weight_8.00.yaml" ]; then
    MP_ARGS=(--config-weight-mp "$ROOT/mixed_precision_configs/sdxl_turbo/weight_8.00.yaml"
             --config-act-mp "$ROOT/mixed_precision_configs/sdxl_turbo/act_8.00.yaml"
             --act-protect "$ROOT/mixed_precision_configs/sdxl_turbo/act_protect.yaml")
fi
"$MIXDQ" infer --base-path "$BASE" "${MODEL_ARGS[@]}" "${MP_ARGS[@]}" \
    --prompt "a vanilla and chocolate mixing icecream cone, ice background" --num-imgs 8 --batch-size 2 "$@"
