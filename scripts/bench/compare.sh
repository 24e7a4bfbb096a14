#!/usr/bin/env bash
# Runs `mixdq bench <component>` and its PyTorch peer ALTERNATELY on the same machine, then prints one table.
#
#   scripts/bench/compare.sh unet|text-encoder|text-encoder-2|vae-decoder [fp32|bf16] [rounds]
#   scripts/bench/compare.sh unet w8a8 [rounds]
#
# Each round is one mixdq process, then one PyTorch process; each process builds the full-size component with
# random weights and does WARMUP untimed + RUNS timed forwards (its median is one row). Alternating the two in
# one invocation keeps slow drifts of a shared machine's load from favouring either side. /proc/loadavg is
# printed before and after.
#
# unet w8a8: mixdq runs `bench unet --quant w8a8` (every Conv2d/Linear on the int8 backend) and each round has two
# PyTorch processes, the fp32 UNet and the "PyTorch dynamic INT8" peer (the fp32 UNet with its nn.Linear layers
# converted by torch.ao.quantization.quantize_dynamic, qint8); the table gives our time over each.
#
# Environment:
#   RUNS (2), WARMUP (1), HEIGHT/WIDTH (512; unet and vae-decoder), BATCH (1), THREADS (2, the peer's
#   torch.set_num_threads), PROFILE=1 (adds --profile to mixdq; its per-op seconds are printed),
#   MIXDQ_BIN (default .build/release/mixdq; build it first with `swift build -c release`),
#   MIXDQ_REFERENCE_PYTHON (the peer's Python; else .venv-reference/bin/python).
#   LOG_DIR (default a fresh temporary folder): each process's stdout/stderr is kept there.
#   PEER_MALLOC=tcmalloc: run the peer with gperftools' tcmalloc preloaded, the allocator mixdq links (PyTorch
#   as installed uses glibc malloc, which faults its large activations in afresh every layer).
#
# Peak RSS is measured from outside (GNU time's maximum resident set size of each process, in GiB) when
# /usr/bin/time exists, else taken from what each process reports.
set -euo pipefail

usage() { echo "usage: $0 unet|text-encoder|text-encoder-2|vae-decoder [fp32|bf16] [rounds], or $0 unet w8a8 [rounds]" >&2; exit 2; }
[[ $# -ge 1 && $# -le 3 ]] || usage
component=$1
precision=${2:-fp32}
rounds=${3:-1}
[[ $precision == fp32 || $precision == bf16 || ($precision == w8a8 && $component == unet) ]] || usage
[[ $rounds =~ ^[1-9][0-9]*$ ]] || usage

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
runs=${RUNS:-2}
warmup=${WARMUP:-1}
height=${HEIGHT:-512}
width=${WIDTH:-512}
batch=${BATCH:-1}
threads=${THREADS:-2}
mixdq=${MIXDQ_BIN:-$root/.build/release/mixdq}
log_dir=${LOG_DIR:-$(mktemp -d -t mixdq-compare.XXXXXX)}
mkdir -p "$log_dir"

if [[ ! -x $mixdq ]]; then
    echo "error: $mixdq not found; build it with 'swift build -c release' or set MIXDQ_BIN" >&2
    exit 1
fi

peer_python=""
for candidate in "${MIXDQ_REFERENCE_PYTHON:-}" "$root/.venv-reference/bin/python"; do
    if [[ -n $candidate && -x $candidate ]]; then peer_python=$candidate; break; fi
done
peer_modules=torch
case $component in
    unet|vae-decoder) peer_modules="torch, diffusers" ;;
    text-encoder|text-encoder-2) peer_modules="torch, transformers" ;;
esac
if [[ -n $peer_python ]] && ! "$peer_python" -c "import $peer_modules" >/dev/null 2>&1; then
    echo "note: $peer_python cannot import $peer_modules" >&2
    peer_python=""
fi

peer_env=()
case ${PEER_MALLOC:-glibc} in
    glibc) ;;
    tcmalloc)
        preload=$(ldconfig -p | awk '/libtcmalloc_minimal\.so\.4 .*x86-64/ {print $NF; exit}')
        [[ -n $preload ]] || { echo "error: PEER_MALLOC=tcmalloc but libtcmalloc_minimal.so.4 is not installed" >&2; exit 2; }
        peer_env=(env "LD_PRELOAD=$preload") ;;
    *) echo "error: PEER_MALLOC must be glibc or tcmalloc" >&2; exit 2 ;;
esac

profile_flag=()
[[ ${PROFILE:-0} == 1 ]] && profile_flag=(--profile)

case $component in
    unet)
        config=configs/models/sdxl-turbo-unet.json
        ours=("$mixdq" bench unet --random-weights --model-config "$config" --height "$height" --width "$width"
              --runs "$runs" --warmup "$warmup" --json "${profile_flag[@]}")
        if [[ $precision == w8a8 ]]; then ours+=(--quant w8a8); else ours+=(--precision "$precision"); fi
        peer=(scripts/bench/diffusers_unet.py --config "$config" --height "$height" --width "$width"
              --threads "$threads" --runs "$runs" --warmup "$warmup")
        shape="${height}x${width}" ;;
    text-encoder|text-encoder-2)
        config=configs/models/sdxl-turbo-$component.json
        ours=("$mixdq" bench text-encoder --random-weights --model-config "$config" --batch "$batch"
              --precision "$precision" --runs "$runs" --warmup "$warmup" --json "${profile_flag[@]}")
        peer=(scripts/bench/diffusers_components.py --component "$component" --config "$config" --batch "$batch"
              --threads "$threads" --runs "$runs" --warmup "$warmup")
        shape="batch ${batch}x77" ;;
    vae-decoder)
        if [[ $precision != fp32 ]]; then
            echo "error: the VAE decoder runs in fp32 only (SDXL's VAE overflows in reduced precision)" >&2; exit 2
        fi
        config=configs/models/sdxl-turbo-vae.json
        ours=("$mixdq" bench vae-decoder --random-weights --model-config "$config" --height "$height" --width "$width"
              --batch "$batch" --runs "$runs" --warmup "$warmup" --json "${profile_flag[@]}")
        peer=(scripts/bench/diffusers_components.py --component vae-decoder --config "$config" --height "$height"
              --width "$width" --batch "$batch" --threads "$threads" --runs "$runs" --warmup "$warmup")
        shape="${batch}x${height}x${width}" ;;
    *) usage ;;
esac

# The peer processes of each round: one at our precision, or for w8a8 PyTorch fp32 and PyTorch dynamic INT8.
# One peer keeps its log name "pytorch"; several are "pytorch-<precision>".
if [[ $precision == w8a8 ]]; then peer_precisions=(fp32 dynamic-int8); else peer_precisions=("$precision"); fi
peer_name() { if [[ ${#peer_precisions[@]} -eq 1 ]]; then echo pytorch; else echo "pytorch-$1"; fi; }
peer_names=()
for p in "${peer_precisions[@]}"; do peer_names+=("$(peer_name "$p")"); done

# run NAME CMD...: runs CMD with its stdout/stderr in $log_dir/NAME.{out,err} and its max RSS (KiB) in NAME.rss.
run() {
    local name=$1; shift
    local status=0
    if [[ -x /usr/bin/time ]]; then
        /usr/bin/time -f %M -o "$log_dir/$name.rss" "$@" >"$log_dir/$name.out" 2>"$log_dir/$name.err" || status=$?
    else
        "$@" >"$log_dir/$name.out" 2>"$log_dir/$name.err" || status=$?
    fi
    if [[ $status -ne 0 ]]; then
        echo "error: $name exited with $status; see $log_dir/$name.err:" >&2
        tail -n 5 "$log_dir/$name.err" >&2
        exit 1
    fi
}

load_before=$(cat /proc/loadavg)
echo "compare $component $precision $shape: $rounds round(s) of $warmup warm-up + $runs timed runs each" >&2
echo "logs in $log_dir; the peer's malloc: ${PEER_MALLOC:-glibc}" >&2
[[ -n $peer_python ]] || echo "note: the PyTorch peer is not installed (set MIXDQ_REFERENCE_PYTHON or create .venv-reference); timing mixdq only" >&2
for ((r = 1; r <= rounds; r++)); do
    echo "round $r/$rounds: mixdq ..." >&2
    run "mixdq.$r" "${ours[@]}"
    if [[ -n $peer_python ]]; then
        for p in "${peer_precisions[@]}"; do
            name=$(peer_name "$p")
            echo "round $r/$rounds: $name ..." >&2
            run "$name.$r" "${peer_env[@]}" "$peer_python" "${peer[@]}" --precision "$p"
        done
    fi
done
load_after=$(cat /proc/loadavg)

python3 - "$log_dir" "$rounds" "$component" "$precision" "$shape" "$load_before" "$load_after" "${peer_python:+yes}" \
    "$(IFS=,; echo "${peer_names[*]}")" <<'EOF'
import json, os, statistics, sys

log_dir, rounds, component, precision, shape, load_before, load_after, has_peer, peer_names = sys.argv[1:10]
rounds = int(rounds)
peer_names = peer_names.split(",")

def read(name):
    path = os.path.join(log_dir, name + ".out")
    if not os.path.exists(path):
        return None
    lines = [l for l in open(path).read().splitlines() if l.startswith("{")]
    if not lines:
        sys.exit(f"error: no JSON line in {path}")
    result = json.loads(lines[-1])
    rss_path = os.path.join(log_dir, name + ".rss")
    if os.path.exists(rss_path):
        kib = [int(t) for t in open(rss_path).read().split() if t.isdigit()]
        if kib:
            result["peak_rss_gb"] = kib[-1] * 1024 / 2**30   # GNU time: max RSS in KiB
    return result

rows = []
for r in range(1, rounds + 1):
    peers = {name: read(f"{name}.{r}") for name in peer_names} if has_peer else {}
    rows.append((r, read(f"mixdq.{r}"), peers))

def fmt(x, spec="%.3f"):
    return spec % x if x is not None else "-"

# One peer: columns "pytorch s", "ours/peer", "peer RSS GiB"; several: one set per peer, named after it.
single = len(peer_names) == 1
def short(name):
    return name[len("pytorch-"):] if name.startswith("pytorch-") else name
time_cols = [(n, "pytorch s" if single else f"{n} s", "ours/peer" if single else f"ours/{short(n)}") for n in peer_names]
rss_cols = [(n, "peer RSS GiB" if single else f"{short(n)} RSS GiB") for n in peer_names]

def line(label, ours, peers, rss=True):
    o = ours["median_s"] if isinstance(ours, dict) else ours
    cells = [f"{label:>5}", f"{fmt(o):>9}"]
    for n, t, q in time_cols:
        p = peers.get(n)
        pt = (p["median_s"] if isinstance(p, dict) else p) if p is not None else None
        cells += [f"{fmt(pt):>{max(9, len(t))}}", f"{fmt(o / pt if pt else None, '%.2f'):>{max(9, len(q))}}"]
    if rss:
        cells.append(f"{fmt(ours.get('peak_rss_gb'), '%.2f'):>13}")
        for n, label_ in rss_cols:
            p = peers.get(n)
            cells.append(f"{fmt(p.get('peak_rss_gb') if p else None, '%.2f'):>{len(label_)}}")
    print("  ".join(cells))

print(f"{component} {precision} {shape}  (median of each process's timed runs; ratio < 1: mixdq is faster)")
header = [f"{'round':>5}", f"{'mixdq s':>9}"]
for _, t, q in time_cols:
    header += [f"{t:>{max(9, len(t))}}", f"{q:>{max(9, len(q))}}"]
header.append(f"{'mixdq RSS GiB':>13}")
header += [label_ for _, label_ in rss_cols]
print("  ".join(header))
for r, ours, peers in rows:
    line(str(r), ours, peers)
if rounds > 1:
    o = statistics.median(x["median_s"] for _, x, _ in rows)
    medians = {n: statistics.median(p[n]["median_s"] for _, _, p in rows) for n in peer_names} if has_peer else {}
    line("all", o, medians, rss=False)
last = rows[-1][1]
if "cpu" in last:
    print(f"mixdq CPU: {last['cpu']}")
if "resident_weight_bytes" in last:
    print(f"mixdq {last['precision']}: {last['quantized_layers']} quantized layers, resident weight bytes "
          f"{last['resident_weight_bytes'] / 2**30:.3f} GiB (fp32 {last['fp32_weight_bytes'] / 2**30:.3f} GiB), "
          f"codes held as {last['codes_held']}, 7-bit split in {last['split_layers']} layer(s); "
          f"oneDNN matmul {last['impl_matmul']}, conv {last['impl_conv']}")
if "gflop" in last or "tflop" in last:
    gflop = last.get("gflop", last.get("tflop", 0) * 1000)
    print(f"mixdq: {gflop:.1f} GFLOP/forward -> {gflop / last['median_s']:.1f} GFLOP/s; "
          f"times {', '.join('%.3f' % t for t in last['times'])}")
for name, peer in rows[-1][2].items():
    if peer:
        engine = f", quantized engine {peer['quantized_engine']}" if "quantized_engine" in peer else ""
        print(f"{name}: torch {peer.get('torch')}, {peer.get('threads')} threads{engine}; "
              f"times {', '.join('%.3f' % t for t in peer['times'])}")
if "profile_s" in last:
    total = last["times"][-1] if last["times"] else sum(last["profile_s"].values())
    print("mixdq per-op time, last run: " + ", ".join(
        f"{k} {v:.2f} s ({100 * v / total:.0f}%)" for k, v in sorted(last["profile_s"].items(), key=lambda kv: -kv[1])))
if not has_peer:
    print("pytorch peer: not installed (set MIXDQ_REFERENCE_PYTHON, or create .venv-reference with torch/diffusers/transformers)")
print(f"loadavg before: {load_before}")
print(f"loadavg after:  {load_after}")
EOF
