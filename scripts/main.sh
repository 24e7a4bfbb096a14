#!/usr/bin/env bash
# The whole MixDQ flow (the original main.sh): calibration data -> PTQ -> uniform W8A8 inference
# on 8 COCO prompts. Runs on the embedded default model; MODEL=/path/to/sdxl-turbo for a real one.
source "$(dirname "$0")/common.sh"
bash "$ROOT/scripts/main_calib_data.sh"
bash "$ROOT/scripts/main_ptq.sh" debug_sdxl_turbo
"$MIXDQ" infer --base-path "$LOGS/debug_sdxl_turbo" "${MODEL_ARGS[@]}" --num-imgs 8 --batch-size 2
echo "images: $LOGS/debug_sdxl_turbo/generated_images  checkpoint: $LOGS/debug_sdxl_turbo/ckpt.safetensors"
