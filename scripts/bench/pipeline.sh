#!/usr/bin/env bash
# Whole 512x512 text-to-image (text encoders + UNet + VAE, 1 step, SDXL-Turbo settings) on the full-size
# SDXL-Turbo architecture with seeded random weights: fp32, bf16 and W8A8 (the deployable INT8 UNet from
# `mixdq quantize`). Prints wall time and peak RSS (GNU time, measured from outside) of each process and
# the CPU line. The random-weight model, calibration data, checkpoint and quantized UNet are made once and
# kept in WORK_DIR (about 12 GB); the three timed runs are one image each, run one after the other.
#
#   scripts/bench/pipeline.sh [WORK_DIR]      (default: a fresh temporary folder)
#
# Environment: MIXDQ_BIN (default .build/release/mixdq), PROMPT.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
mixdq=${MIXDQ_BIN:-$root/.build/release/mixdq}
work=${1:-$(mktemp -d -t mixdq-pipeline.XXXXXX)}
prompt=${PROMPT:-"A man riding a bicycle down a city street next to parked cars."}
[[ -x $mixdq ]] || { echo "error: $mixdq not found; build it with 'swift build -c release' or set MIXDQ_BIN" >&2; exit 1; }
[[ -x /usr/bin/time ]] || { echo "error: GNU time (/usr/bin/time, Debian package 'time') is needed for peak RSS" >&2; exit 1; }
mkdir -p "$work"
echo "work dir: $work" >&2

# A config like configs/sdxl_turbo.yaml: this model, 4 calibration prompts in batches of 2, 512x512.
config=$work/config.yaml
sed -e "s|# path: ../models/sdxl-turbo.*|path: $work/model|" \
    -e "s|path: \"../outputs/calib/sdxl_turbo_calib.h5\"|path: \"$work/calib.h5\"|" \
    -e "s|n_samples: 32|n_samples: 4|" -e "s|batch_size: 8 |batch_size: 2 |" \
    -e "s|captions: \"../assets/|captions: \"$root/assets/|" \
    -e "s|# height: 512|height: 512|" -e "s|# width: 512|width: 512|" \
    "$root/configs/sdxl_turbo.yaml" > "$config"

step() { echo "== $*" >&2; "$@"; }
[[ -f $work/model/model_index.json ]] || step "$mixdq" default-model --full-size-random --output "$work/model"
[[ -f $work/calib.h5 ]] || step "$mixdq" calib-data --config "$config"
[[ -f $work/ptq/ckpt.safetensors ]] || step "$mixdq" ptq --config "$config" --outdir "$work/ptq"
[[ -d $work/unet-w8a8 ]] || step "$mixdq" quantize --config "$config" --ckpt "$work/ptq" --out "$work/unet-w8a8"

# run NAME LABEL CMD...: one timed process; wall seconds and max RSS (KiB) from GNU time.
run() {
    local name=$1 label=$2; shift 2
    rm -rf "$work/out-$name"
    /usr/bin/time -f "%e %M" -o "$work/$name.time" "$@" --prompt "$prompt" --num-imgs 1 --batch-size 1 \
        >"$work/$name.log" 2>&1 || { echo "error: $name failed, see $work/$name.log" >&2; exit 1; }
    read -r wall kib < "$work/$name.time"
    printf "| %-30s | %8.1f s | %6.2f GiB |\n" "$label" "$wall" "$(echo "$kib / 1048576" | bc -l)"
}
echo "CPU: $("$mixdq" cpu-info | tr '\n' ' ')"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| 512x512 text-to-image, 1 step | wall | peak RSS |"
echo "|---|---|---|"
run fp32 "fp32" "$mixdq" fp-infer --config "$config" --base-path "$work/out-fp32"
if "$mixdq" cpu-info | grep -q "bf16: yes"; then
    run bf16 "bf16" "$mixdq" fp-infer --config "$config" --precision bf16 --base-path "$work/out-bf16"
else
    echo "| bf16 | (no bf16 on this CPU) | |"
fi
run w8a8 "W8A8 (deployable INT8 UNet)" "$mixdq" infer --config "$config" --base-path "$work/ptq" --unet "$work/unet-w8a8" \
    --image-folder "$work/out-w8a8"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
