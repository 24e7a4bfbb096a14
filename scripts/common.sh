# Shared by the step scripts: finds (or builds) the mixdq binary and the model argument.
# MODEL=/path/to/diffusers/folder uses a real model (e.g. SDXL-Turbo); unset = the embedded default model.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
MIXDQ="${MIXDQ:-$ROOT/.build/release/mixdq}"
if [ ! -x "$MIXDQ" ]; then
    swift build -c release --product mixdq >&2
fi
CONFIG="${CONFIG:-$ROOT/configs/sdxl_turbo.yaml}"
MODEL_ARGS=()
if [ -n "${MODEL:-}" ]; then MODEL_ARGS=(--model "$MODEL"); fi
LOGS="${LOGS:-$ROOT/logs}"
