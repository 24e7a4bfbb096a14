#!/usr/bin/env bash
# The test command: set-up (idempotent), then every test in release mode (parity tests against
# committed diffusers/transformers fixtures included; no torch needed).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
# Packages only: `swift test` builds the binary with the tests (a separate product build would be a
# second full build, its flags differ).
bash "$ROOT/scripts/bootstrap.sh" --deps-only
cd "$ROOT"
# oneDNN's OpenMP threads must not spin-wait (libgomp reads this only at start; the CLI re-execs itself with it).
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
swift test -c release "$@"
