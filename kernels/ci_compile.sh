#!/usr/bin/env bash
# CI step: compile kernels/ (library, test, bench) for sm_80 and sm_90 with nvcc and the CUTLASS
# headers from PyPI, into a venv under the clone (.venv-cuda, gitignored). Compile only: CI has no
# GPU; the test program also runs against a CPU stand-in of the library (tests/cpu_mock.cu). Fails
# (non-zero) when installing, compiling or that run fails. Prints how long each part took.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-cuda
start=$(date +%s)
# What nvcc and the venv need from Debian (present on our machines; installed like scripts/bootstrap.sh does otherwise).
need=()
command -v g++ >/dev/null 2>&1 || need+=(g++)
command -v make >/dev/null 2>&1 || need+=(make)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
    SUDO=""; if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    echo "installing: ${need[*]}" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
if [ ! -x "$VENV/bin/pip" ]; then python3 -m venv "$VENV"; fi
# nvidia-cutlass without its dependencies: only its headers are used (its deps are ~250 MB of numpy, scipy, cuda-python).
"$VENV/bin/pip" install --quiet --disable-pip-version-check \
    nvidia-cuda-nvcc==13.5.37 nvidia-cuda-runtime==13.5.37 nvidia-cuda-crt==13.5.37 nvidia-cuda-cccl==13.3.5.0.6
"$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps nvidia-cutlass==4.2.0.0
installed=$(date +%s)
echo "kernels: toolchain ready in $((installed - start)) s ($("$VENV"/lib/python3*/site-packages/nvidia/cu13/bin/nvcc --version | tail -1))"
make -C kernels -j"$(nproc)" all
echo "kernels: compiled in $(($(date +%s) - installed)) s (library, test, bench; sm_80 + sm_90; not run: no GPU)"
# The test program against the CPU stand-in of the library (checks the test and the API contract, not the kernels).
make -C kernels check-cpu
