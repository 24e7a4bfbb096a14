#!/usr/bin/env bash
# Calibration data (the original main_calib_data.sh): calib_data.n_samples COCO captions into calib_data.path.
source "$(dirname "$0")/common.sh"
"$MIXDQ" calib-data --config "$CONFIG" "${MODEL_ARGS[@]}" --save-image-path "$LOGS/debug_imgs" "$@"
