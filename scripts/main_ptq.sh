#!/usr/bin/env bash
# PTQ (the original main_ptq.sh <log_name>): quant parameters for all bit widths into logs/<log_name>.
source "$(dirname "$0")/common.sh"
LOG_NAME="${1:-debug_sdxl_turbo}"; shift || true
"$MIXDQ" ptq --config "$CONFIG" "${MODEL_ARGS[@]}" --outdir "$LOGS/$LOG_NAME" --seed 42 "$@"
