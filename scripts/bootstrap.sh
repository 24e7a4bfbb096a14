#!/usr/bin/env bash
# Installs the Debian packages mixdq links against (idempotent) and builds the release binary.
#   bash scripts/bootstrap.sh [--deps-only]   (--deps-only: packages only; scripts/test.sh builds with the tests)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PACKAGES=(libdnnl-dev libopenblas-dev libhdf5-dev libpng-dev libglpk-dev libgoogle-perftools-dev libcairo2-dev zlib1g-dev fonts-dejavu-core pkg-config)
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    echo "installing: ${missing[*]}" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [ "${1:-}" = "--deps-only" ]; then exit 0; fi
cd "$ROOT"
swift build -c release --product mixdq
