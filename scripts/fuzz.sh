#!/usr/bin/env bash
# Runs one fuzz target (or all) under libFuzzer with AddressSanitizer for SECONDS each.
#
#   bash scripts/fuzz.sh TARGET SECONDS [libFuzzer options...]
#   bash scripts/fuzz.sh all SECONDS
#
# TARGET: safetensors, config-json, mixdq-yaml, tokenizer, hdf5, quantized-unet, torch-list (fuzz/README.md describes each).
# Seeds come from fuzz/corpus/TARGET; inputs libFuzzer finds go to .build-fuzz/corpus/TARGET, a
# crashing input to .build-fuzz/artifacts/ and libFuzzer's output to .build-fuzz/logs/TARGET.log.
# Prints the number of inputs run; exits non-zero on a crash, a sanitizer report, a hang
# (-timeout) or an out-of-memory input.
# Replay a saved input without the sanitizer: swift run -c release MixDQFuzz TARGET FILE...
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
TARGETS=(safetensors config-json mixdq-yaml tokenizer hdf5 quantized-unet torch-list)
if [ $# -lt 2 ] || ! [[ "$2" =~ ^[0-9]+$ ]]; then
    echo "usage: $0 TARGET|all SECONDS [libFuzzer options...]   (targets: ${TARGETS[*]})" >&2
    exit 2
fi
TARGET="$1"; SECONDS_EACH="$2"; shift 2
if [ "$TARGET" != all ] && [[ ! " ${TARGETS[*]} " =~ " $TARGET " ]]; then
    echo "unknown fuzz target '$TARGET' (targets: ${TARGETS[*]})" >&2
    exit 2
fi

# Swift and C code instrumented for libFuzzer + ASan, in a scratch folder of its own so the
# ordinary .build stays uninstrumented. -DFUZZING hands main() to libFuzzer's driver. lld, from
# the Swift toolchain: SwiftPM aliases main to the target's entry point with --defsym, which gold
# cannot reconcile with libFuzzer's own main (lld lets the alias win).
SCRATCH=.build-fuzz
swift build -c release --scratch-path "$SCRATCH" --product MixDQFuzz \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING \
    -Xswiftc -Xclang-linker -Xswiftc -fuse-ld=lld \
    -Xcc -fsanitize=fuzzer-no-link,address >&2
BIN="$SCRATCH/release/MixDQFuzz"

run_one() {
    local target="$1" log
    shift
    mkdir -p "$SCRATCH/corpus/$target" "$SCRATCH/artifacts" "$SCRATCH/logs"
    log="$SCRATCH/logs/$target.log"
    local dict=()
    if [ -f "fuzz/dict/$target.dict" ]; then dict=(-dict="fuzz/dict/$target.dict"); fi
    # Leak checking is off: the Swift runtime keeps metadata caches for the process lifetime.
    # A failed allocation returns NULL as without ASan (libhdf5 then reports an error; Swift
    # code still traps, which counts as a crash).
    local asan="detect_leaks=0:allocator_may_return_null=1"
    if [ -f "fuzz/asan-suppressions-$target.txt" ]; then asan="$asan:suppressions=fuzz/asan-suppressions-$target.txt"; fi
    # hdf5: libhdf5 1.10 itself runs out of memory, loops or crashes on some corrupted files
    # (fuzz/README.md). Fork mode notes those inputs (saved under artifacts/) and goes on; every
    # crash is then replayed and judged by its stack: one that starts inside libhdf5 is a library
    # finding (reported, kept), any other fails the run.
    local mode=()
    if [ "$target" = hdf5 ]; then mode=(-fork=1 -ignore_ooms=1 -ignore_timeouts=1 -ignore_crashes=1); fi
    local marker="$SCRATCH/artifacts/.start-$target"
    touch "$marker"
    # -timeout: one input running longer than 10 s is reported as a hang.
    set +e
    ASAN_OPTIONS="${ASAN_OPTIONS:-$asan}" "$BIN" "$target" \
        -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -detect_leaks=0 \
        -artifact_prefix="$SCRATCH/artifacts/$target-" -print_final_stats=1 "${mode[@]}" "${dict[@]}" "$@" \
        "$SCRATCH/corpus/$target" "fuzz/corpus/$target" >"$log" 2>&1
    local rc=$?
    set -e
    local done_line
    done_line="$(grep -E '^Done [0-9]+ runs in [0-9]+ second' "$log" | tail -1 || true)"
    if [ ${#mode[@]} -gt 0 ]; then
        # Fork mode's last status line: "#RUNS: cov: ... oom/timeout/crash: O/T/C time: Ss ..."
        done_line="$(grep -E '^#[0-9]+: cov:' "$log" | tail -1 | sed -nE \
            's|^#([0-9]+):.*oom/timeout/crash: ([0-9]+)/([0-9]+)/([0-9]+) time: ([0-9]+)s.*|Done \1 runs in \5 second(s); libhdf5 out-of-memory/hang inputs: \2/\3, crashes: \4|p')"
        local crash library=0 ours=0 first
        while IFS= read -r crash; do
            # The first stack frame that is not libc, a sanitizer interceptor or libFuzzer itself.
            first="$(ASAN_OPTIONS="${ASAN_OPTIONS:-$asan}" "$BIN" "$target" "$crash" 2>&1 \
                | grep -E '^ +#[0-9]+ 0x' | grep -vE 'sysdeps|sanitizer_common|/asan/|compiler-rt/lib/fuzzer|libc\.so' \
                | head -n 1 || true)"
            if [[ "$first" == *libhdf5* ]]; then
                library=$((library + 1))
            else
                ours=$((ours + 1))
                echo "crash outside libhdf5: $crash: ${first:-no stack}" >&2
            fi
        done < <(find "$SCRATCH/artifacts" -name "$target-crash-*" -newer "$marker" 2>/dev/null)
        if [ $library -gt 0 ]; then
            echo "note $target: $library crash(es) inside libhdf5 itself (library findings, inputs under $SCRATCH/artifacts/)" >&2
        fi
        if [ $ours -gt 0 ]; then
            rc=1
        elif [ $rc -ne 0 ] && [ $library -gt 0 ] && [ -n "$done_line" ]; then
            # Fork mode exits 1 when a job crashes while it winds down, -ignore_crashes or not; every
            # crash of this run was replayed above and starts inside libhdf5.
            rc=0
        fi
    fi
    if [ $rc -ne 0 ] || [ -z "$done_line" ]; then
        tail -n 60 "$log" >&2
        echo "FAIL $target: libFuzzer exited with $rc (input saved under $SCRATCH/artifacts/, log $log)" >&2
        return 1
    fi
    echo "$target: $done_line"
}

if [ "$TARGET" = all ]; then
    failed=()
    for t in "${TARGETS[@]}"; do run_one "$t" "$@" || failed+=("$t"); done
    if [ ${#failed[@]} -gt 0 ]; then echo "fuzz targets that failed: ${failed[*]}" >&2; exit 1; fi
else
    run_one "$TARGET" "$@"
fi
