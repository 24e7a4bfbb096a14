#!/usr/bin/env bash
# The whole MixDQ flow (the original main.sh): calibration data -> PTQ -> uniform W8A8 inference.
# On the embedded trained model (default) the prompts are the synthetic domain's 50 held-out
# captions: FP and W8A8 images are made for each and `mixdq eval` prints the caption checker's
# accuracy and the W8A8-vs-FP SSIM/PSNR. MODEL=/path/to/sdxl-turbo runs 8 COCO prompts instead.
source "$(dirname "$0")/common.sh"
bash "$ROOT/scripts/main_calib_data.sh"
bash "$ROOT/scripts/main_ptq.sh" debug_sdxl_turbo
BASE="$LOGS/debug_sdxl_turbo"
if [ -z "${MODEL:-}" ] && [ "${MIXDQ_DEFAULT_MODEL:-trained}" = trained ]; then
    HELDOUT="$ROOT/scripts/train/heldout_captions.txt"
    "$MIXDQ" fp-infer --config "$CONFIG" --captions "$HELDOUT" --base-path "$LOGS/heldout_fp" --num-imgs 50 --batch-size 10
    "$MIXDQ" infer --base-path "$BASE" --captions "$HELDOUT" --num-imgs 50 --batch-size 10
    echo "== W8A8 images: caption checker and SSIM/PSNR against FP =="
    "$MIXDQ" eval --images "$BASE/generated_images" --reference "$LOGS/heldout_fp/generated_images" \
        --captions "$HELDOUT" --csv "$BASE/eval.csv"
    echo "== FP images: caption checker =="
    "$MIXDQ" eval --images "$LOGS/heldout_fp/generated_images" --captions "$HELDOUT" --csv "$LOGS/heldout_fp/eval.csv"
else
    "$MIXDQ" infer --base-path "$BASE" "${MODEL_ARGS[@]}" --num-imgs 8 --batch-size 2
fi
echo "images: $BASE/generated_images  checkpoint: $BASE/ckpt.safetensors"
