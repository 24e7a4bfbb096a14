#!/usr/bin/env bash
# FP generation (the original main_fp_infer.sh): 8 images of one prompt, batch 2.
source "$(dirname "$0")/common.sh"
"$MIXDQ" fp-infer --config "$CONFIG" "${MODEL_ARGS[@]}" --base-path "$LOGS/debug_fp" \
    --prompt "a vanilla and chocolate mixing icecream cone, ice background" --num-imgs 8 --batch-size 2 "$@"
