#!/usr/bin/env bash
# The GPU check of kernels/ (about 3-6 minutes on an H200, most of it compiling): builds the
# library, runs the tests against the CPU reference and the benchmark (INT8 vs cuBLAS FP16, and
# PyTorch FP16 when torch is importable). Results go to kernels/build/gpu_check/ (or $OUT when set).
#   bash kernels/gpu_check.sh
# Uses nvcc from CUDA_HOME (else the one on PATH, else ../.venv-cuda) and CUTLASS headers from
# CUTLASS_INCLUDE (else the nvidia-cutlass wheel, installed with pip --no-deps when missing).
set -uo pipefail
cd "$(dirname "$0")"
RESULTS="${OUT:-build/gpu_check}"
mkdir -p "$RESULTS"
log() { echo "== $* ==" | tee -a "$RESULTS/summary.txt"; }

# nvcc: $CUDA_HOME, else the one on PATH, else /usr/local/cuda, else ../.venv-cuda (the Makefile's default).
if [ -z "${CUDA_HOME:-}" ]; then
    if command -v nvcc >/dev/null 2>&1; then CUDA_HOME="$(dirname "$(dirname "$(command -v nvcc)")")"
    elif [ -x /usr/local/cuda/bin/nvcc ]; then CUDA_HOME=/usr/local/cuda; fi
fi
# CUTLASS headers: $CUTLASS_INCLUDE, else ../.venv-cuda's wheel (carried to a GPU machine without
# network: run with carry [".venv-cuda/lib/python3.11/site-packages/cutlass_library/source/include"],
# 27 MB), else an importable cutlass_library, else pip (needs network).
if [ -z "${CUTLASS_INCLUDE:-}" ]; then
    for d in ../.venv-cuda/lib/python3*/site-packages/cutlass_library/source/include; do
        [ -f "$d/cutlass/cutlass.h" ] && CUTLASS_INCLUDE="$(cd "$d" && pwd)"
    done
fi
if [ -z "${CUTLASS_INCLUDE:-}" ]; then
    CUTLASS_INCLUDE="$(python3 -c 'import cutlass_library, os; print(os.path.join(os.path.dirname(cutlass_library.__file__), "source", "include"))' 2>/dev/null || true)"
fi
if [ ! -f "${CUTLASS_INCLUDE:-/nonexistent}/cutlass/cutlass.h" ]; then
    timeout 60 python3 -m pip install --quiet --no-deps --retries 0 --timeout 10 --target build/pydeps nvidia-cutlass==4.2.0.0 >/dev/null 2>&1 || true
    CUTLASS_INCLUDE="$PWD/build/pydeps/cutlass_library/source/include"
fi
if [ ! -f "$CUTLASS_INCLUDE/cutlass/cutlass.h" ]; then
    log "CUTLASS headers not found (set CUTLASS_INCLUDE or carry ../.venv-cuda's cutlass_library/source/include)"; exit 1
fi
MAKEVARS=()
[ -n "${CUDA_HOME:-}" ] && MAKEVARS+=("CUDA_HOME=$CUDA_HOME")
[ -n "${CUTLASS_INCLUDE:-}" ] && MAKEVARS+=("CUTLASS_INCLUDE=$CUTLASS_INCLUDE")
# Only the arch of this GPU, to save compile time (sm_90 on H100/H200, sm_80 on A100).
CC="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d '. ')"
[ -n "$CC" ] && MAKEVARS+=("ARCHS=-gencode arch=compute_$CC,code=sm_$CC")
nvidia-smi 2>&1 | head -15 > "$RESULTS/nvidia-smi.txt"

log "build (${MAKEVARS[*]})"
start=$(date +%s)
if ! make -j"$(nproc)" "${MAKEVARS[@]}" > "$RESULTS/build.log" 2>&1; then
    tail -40 "$RESULTS/build.log"; log "BUILD FAILED"; exit 1
fi
log "built in $(( $(date +%s) - start )) s"

log "tests"
timeout 240 ./build/mixdq_cuda_test 2>&1 | tee "$RESULTS/test.log" | tail -40
test_rc=${PIPESTATUS[0]}
log "tests exit $test_rc"

log "benchmark"
if [ -z "${MIXDQ_CUBLAS:-}" ]; then
    # PyTorch's wheel carries cuBLAS; use it when the system has none on the loader path.
    MIXDQ_CUBLAS="$(python3 - <<'PY' 2>/dev/null
import glob, os
try:
    import nvidia.cublas as c
    hits = glob.glob(os.path.join(list(c.__path__)[0], "lib", "libcublas.so.*"))
except Exception:
    hits = []
print(sorted(hits)[0] if hits else "")
PY
)"
    export MIXDQ_CUBLAS
fi
timeout 180 ./build/mixdq_cuda_bench "$RESULTS/bench.md" > "$RESULTS/bench.log" 2>&1
log "bench exit $? (table: $RESULTS/bench.md)"
tail -6 "$RESULTS/bench.md" 2>/dev/null

if python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    log "PyTorch FP16"
    timeout 120 python3 bench/torch_fp16.py "$RESULTS/torch_fp16.md" > "$RESULTS/torch_fp16.log" 2>&1
    log "torch exit $?"
    grep "All 794" "$RESULTS/torch_fp16.md" 2>/dev/null
fi
exit "$test_rc"
