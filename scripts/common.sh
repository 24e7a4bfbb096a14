# Shared by the step scripts: finds (or builds) the mixdq binary and the model argument.
# MODEL=/path/to/diffusers/folder uses a real model (e.g. SDXL-Turbo); unset = the embedded default model.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
MIXDQ="${MIXDQ:-$ROOT/.build/release/mixdq}"
if [ ! -x "$MIXDQ" ]; then
    swift build -c release --product mixdq >&2
fi
# The embedded trained model (the synthetic shapes domain) calibrates on its own domain's captions.
if [ -z "${MODEL:-}" ] && [ "${MIXDQ_DEFAULT_MODEL:-trained}" = trained ]; then
    CONFIG="${CONFIG:-$ROOT/configs/trained_tiny_sdxl.yaml}"
else
    CONFIG="${CONFIG:-$ROOT/configs/sdxl_turbo.yaml}"
fi
MODEL_ARGS=()
if [ -n "${MODEL:-}" ]; then MODEL_ARGS=(--model "$MODEL"); fi
LOGS="${LOGS:-$ROOT/logs}"
