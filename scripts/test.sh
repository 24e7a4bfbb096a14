#!/usr/bin/env bash
# The test command: set-up (idempotent), then every test in release mode (parity tests against
# committed diffusers/transformers fixtures included; no torch needed).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
bash "$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
swift test -c release "$@"
