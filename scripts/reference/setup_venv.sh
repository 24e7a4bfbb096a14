#!/usr/bin/env bash
# Create (or reuse) the Python reference venv used to generate test fixtures and the PyTorch baseline benchmark.
#
#   scripts/reference/setup_venv.sh [VENV_DIR]      (default: .venv-reference in the repo root, gitignored)
#
# Idempotent: if VENV_DIR already has every pin of requirements.txt installed, nothing is downloaded.
# Needs python3 (3.11 was used) with the venv module, and access to PyPI. pip's own environment variables
# (PIP_INDEX_URL, PIP_EXTRA_INDEX_URL, PIP_CACHE_DIR, ...) are honoured, e.g. to point torch at a CPU-only index.
# Fixtures are generated once and committed; CI and the Swift tests never need this venv.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="${1:-$repo/.venv-reference}"
req="$here/requirements.txt"
python="${PYTHON:-python3}"

# Prints the pins of requirements.txt that the venv lacks (empty output: all satisfied).
missing_pins() {
    "$venv/bin/python" - "$req" <<'PY'
import re, sys
from importlib import metadata
def norm(n): return re.sub(r"[-_.]+", "-", n).lower()
for line in open(sys.argv[1]):
    line = line.split("#", 1)[0].strip()
    if not line:
        continue
    name, _, want = line.partition("==")
    try:
        have = metadata.version(norm(name))
    except metadata.PackageNotFoundError:
        have = None
    # torch's local version label (+cu132, +cpu) does not matter
    if have is None or have.split("+", 1)[0] != want:
        print(f"{line} (have {have})")
PY
}

if [[ -x "$venv/bin/python" ]] && [[ -z "$(missing_pins)" ]]; then
    echo "reference venv at $venv is up to date"
    exit 0
fi

if [[ ! -x "$venv/bin/python" ]]; then
    echo "creating venv at $venv"
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --upgrade pip
"$venv/bin/python" -m pip install -r "$req"

left="$(missing_pins)"
if [[ -n "$left" ]]; then
    echo "error: pins still unsatisfied after install:" >&2
    echo "$left" >&2
    exit 1
fi
"$venv/bin/python" -c 'import torch, diffusers, transformers, safetensors; print("torch", torch.__version__, "diffusers", diffusers.__version__, "transformers", transformers.__version__)'
echo "reference venv ready: $venv"
