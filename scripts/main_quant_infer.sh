#!/usr/bin/env bash
# Quantized generation (the original main_quant_infer.sh): W8A8 with the mixed-precision files
# weight_8.00.yaml / act_8.00.yaml / act_protect.yaml from $MP_DIR when present, else uniform W8A8.
source "$(dirname "$0")/common.sh"
BASE="$LOGS/${LOG_NAME:-debug_sdxl_turbo}"
# MP_DIR holds weight_8.00.yaml, act_8.00.yaml, act_protect.yaml for the model in use.
if [ -z "${MP_DIR:-}" ]; then
    # The shipped configs name the layers of one model: SDXL-Turbo's, the random tiny model's or the
    # trained one's (other transformer depths; its folder holds searched configs but no W8A8 files: uniform).
    if [ -n "${MODEL:-}" ]; then MP_DIR="$ROOT/mixed_precision_configs/sdxl_turbo"
    elif [ "${MIXDQ_DEFAULT_MODEL:-trained}" = random ]; then MP_DIR="$ROOT/mixed_precision_configs/tiny-sdxl-v1"
    else MP_DIR="$ROOT/mixed_precision_configs/trained-tiny-sdxl"; fi
fi
MP_ARGS=()
if [ -f "$MP_DIR/weight_8.00.yaml" ]; then
    MP_ARGS=(--config-weight-mp "$MP_DIR/weight_8.00.yaml" --config-act-mp "$MP_DIR/act_8.00.yaml"
             --act-protect "$MP_DIR/act_protect.yaml")
fi
"$MIXDQ" infer --base-path "$BASE" "${MODEL_ARGS[@]}" "${MP_ARGS[@]}" \
    --prompt "a vanilla and chocolate mixing icecream cone, ice background" --num-imgs 8 --batch-size 2 "$@"
