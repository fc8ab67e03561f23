#!/usr/bin/env bash
# The benchmark suite: builds release, runs wgtrain bench on --device cpu and --device gpu,
# the PyTorch twin where torch imports, the MNIST CPU comparison and the scikit-learn quality
# parity, and writes the measured rows into bench/RESULTS.md between the markers
# (<!-- results:start --> … <!-- results:end -->). Run from anywhere:
#
#   bench/run.sh            # the whole suite
#   QUICK=1 bench/run.sh    # fewer steps everywhere (a smoke run)
#   SUITE=gpu bench/run.sh  # the GPU suite only: wgtrain untuned and tuned, PyTorch eager CUDA
#                           # (TF32 off), cuBLAS through torch.mm, PyTorch with CUDA graphs;
#                           # every command under a time limit, so it ends in < 10 min
#
# Sizes too slow for a device are skipped with a row that says so (lavapipe, Mesa's Vulkan on
# the CPU, runs the WGSL kernels at about 1 GFLOP/s on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"

# WGTRAIN_BIN: a prebuilt binary (a lent GPU machine has no Rust: bench/device.sh carries one).
if [ -n "${WGTRAIN_BIN:-}" ]; then
    W=$WGTRAIN_BIN
elif command -v cargo >/dev/null; then
    cargo build --release --quiet ${CARGO_FEATURES:+--features "$CARGO_FEATURES"}
    W=target/release/wgtrain
else
    W=target/release/wgtrain
fi
[ -x "$W" ] || { echo "bench/run.sh: no wgtrain binary at $W and no cargo to build one" >&2; exit 1; }
ROWS=$(mktemp)
# ROWS_FILE: the rows are also copied there as they are measured (bench/device.sh keeps them
# when a time limit cuts the suite short).
ROWS_COPY=${ROWS_FILE:-/dev/null}
NOW=$(date -u +%Y-%m-%dT%H:%MZ)
q() { if [ -n "${QUICK:-}" ]; then echo "$2"; else echo "$1"; fi; }

DEVICES=$($W devices 2>/dev/null || true)
have_gpu=0
if grep -q '^[ *][0-9]' <<<"$DEVICES"; then have_gpu=1; fi
# A hardware GPU gets the full sizes; lavapipe (type Cpu) gets small ones or a skip.
soft_gpu=0
if grep -q 'type Cpu' <<<"$DEVICES"; then soft_gpu=1; fi
have_torch=0
if python3 -c 'import torch' 2>/dev/null; then have_torch=1; fi

gpu_only=0
if [ "${SUITE:-}" = gpu ]; then gpu_only=1; fi
LIMIT=${LIMIT:-150}

# row NAME -- COMMAND…: runs COMMAND (which prints one JSON object, within $LIMIT seconds)
# and records a table row; a failure or a timeout is a row that says so.
row() {
    local name="$1"
    shift 2
    echo ">> $name: $*" >&2
    local json
    if ! json=$(timeout "$LIMIT" "$@" --json 2>/dev/null | tail -1) || [ -z "$json" ]; then
        echo "| $name | (failed or over ${LIMIT} s) | | $NOW | \`$*\` |" >>"$ROWS"
        cp "$ROWS" "$ROWS_COPY" 2>/dev/null || true
        return
    fi
    python3 - "$name" "$NOW" "$*" "$json" "$W" >>"$ROWS" <<'EOF'
import json, sys
name, now, cmd, j = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
cmd = cmd.replace(sys.argv[5], "wgtrain")
if j["mode"] == "train":
    fig = (f"{j['steps_per_s']:.1f} steps/s, {j['samples_per_s']:.0f} samples/s "
           f"({j['median_ms_per_step']:.3f} ms/step, median of {j['repeats']}x{j['steps']})")
    if "dispatches_per_step" in j:
        fig += f", {j['dispatches_per_step']:.0f} dispatches/step"
else:
    fig = f"{j['gflops']:.1f} GFLOP/s ({j['median_ms']:.1f} ms, median of {j['repeats']}x{j['iters']})"
print(f"| {name} | {j['device']} | {fig} | {now} | `{cmd}` |")
EOF
    cp "$ROWS" "$ROWS_COPY" 2>/dev/null || true
}
skip() {
    echo "| $1 | $2 | skipped: $3 | $NOW | |" >>"$ROWS"
    cp "$ROWS" "$ROWS_COPY" 2>/dev/null || true
}

LECTURE="--layers 56,100,100,100,1 --batch 256"
BIG="--layers 784,4096,4096,10 --batch 4096"

# ---- wgtrain, CPU --------------------------------------------------------------------------
if [ $gpu_only = 0 ]; then
    row "lecture 56-100-100-100-1 @256, wgtrain" -- $W bench $LECTURE --device cpu $(q "" "--steps 20 --repeats 2")
    row "784-4096-4096-10 @4096, wgtrain" -- $W bench $BIG --device cpu --steps $(q 3 1) --warmup 1 --repeats 3
    row "matmul 4096³, wgtrain" -- $W bench --matmul 4096 --device cpu --steps 2 --warmup 1 --repeats 3
fi

# ---- wgtrain, GPU: untuned (--tune off), then tuned (`wgtrain tune`, cache in a temp dir) ---
export WGTRAIN_CACHE_DIR="${WGTRAIN_CACHE_DIR:-$(mktemp -d)}"
TUNELOG=$(mktemp)
if [ $have_gpu = 1 ] && [ $soft_gpu = 1 ]; then
    G="--device gpu --steps $(q 50 10) --warmup 5 --repeats 3"
    row "lecture 56-100-100-100-1 @256, wgtrain untuned" -- $W bench $LECTURE $G --tune off
    timeout "$LIMIT" $W tune $LECTURE --device gpu >"$TUNELOG" 2>&1 || echo "(tune failed or timed out)" >>"$TUNELOG"
    row "lecture 56-100-100-100-1 @256, wgtrain tuned" -- $W bench $LECTURE $G
    skip "784-4096-4096-10 @4096, wgtrain" "lavapipe" "about 460 GFLOP per step at ~1 GFLOP/s is ~8 min per step"
    skip "matmul 4096³, wgtrain" "lavapipe" "137 GFLOP at ~1 GFLOP/s is > 2 min per product"
    row "matmul 1024³ (instead of 4096³), wgtrain" -- $W bench --matmul 1024 --device gpu --steps 1 --warmup 1 --repeats 3
elif [ $have_gpu = 1 ]; then
    row "lecture 56-100-100-100-1 @256, wgtrain untuned" -- $W bench $LECTURE --device gpu --tune off
    row "784-4096-4096-10 @4096, wgtrain untuned" -- $W bench $BIG --device gpu --steps $(q 50 5) --warmup 5 --tune off
    row "matmul 4096³, wgtrain untuned" -- $W bench --matmul 4096 --device gpu --tune off
    { timeout "$LIMIT" $W tune $LECTURE --device gpu && timeout "$LIMIT" $W tune $BIG --device gpu &&
      timeout "$LIMIT" $W tune --layers 4096,4096 --batch 4096 --device gpu; } >"$TUNELOG" 2>&1 ||
        echo "(tune failed or timed out)" >>"$TUNELOG"
    row "lecture 56-100-100-100-1 @256, wgtrain tuned" -- $W bench $LECTURE --device gpu
    row "784-4096-4096-10 @4096, wgtrain tuned" -- $W bench $BIG --device gpu --steps $(q 50 5) --warmup 5
    row "matmul 4096³, wgtrain tuned" -- $W bench --matmul 4096 --device gpu
else
    skip "all GPU rows" "none" "no GPU adapter (not even lavapipe)"
fi

# ---- PyTorch -----------------------------------------------------------------------------
if [ $have_torch = 1 ]; then
    P="python3 bench/pytorch_mlp.py"
    if python3 -c 'import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)'; then
        row "lecture 56-100-100-100-1 @256, PyTorch eager CUDA" -- $P $LECTURE
        row "lecture 56-100-100-100-1 @256, PyTorch CUDA graph" -- $P $LECTURE --cuda-graph
        row "784-4096-4096-10 @4096, PyTorch eager CUDA" -- $P $BIG --steps $(q 50 5) --warmup 5
        row "784-4096-4096-10 @4096, PyTorch CUDA graph" -- $P $BIG --steps $(q 50 5) --warmup 5 --cuda-graph
        row "matmul 4096³, torch.mm (cuBLAS)" -- $P --matmul 4096
    else
        skip "PyTorch CUDA, CUDA graphs, cuBLAS rows" "" "torch.cuda.is_available() is False"
    fi
    if [ $gpu_only = 0 ]; then
        row "lecture 56-100-100-100-1 @256, PyTorch eager" -- $P $LECTURE --device cpu $(q "" "--steps 20 --repeats 2")
        row "784-4096-4096-10 @4096, PyTorch eager" -- $P $BIG --device cpu --steps $(q 3 1) --warmup 1 --repeats 3
        row "matmul 4096³, torch.mm" -- $P --matmul 4096 --device cpu --steps 2 --warmup 1 --repeats 3
    fi
else
    skip "PyTorch rows" "" "python3 cannot import torch"
fi

# ---- MNIST on the CPU against scikit-learn, and the quality parity --------------------------
MNIST=$(mktemp)
if [ $gpu_only = 1 ]; then
    : # the GPU suite leaves the CPU comparisons out
elif python3 bench/sklearn_mnist.py --json >"$MNIST" 2>/dev/null; then
    python3 - "$NOW" "$MNIST" >>"$ROWS" <<'EOF'
import json, sys
now, j = sys.argv[1], json.load(open(sys.argv[2]))
s, w = j["sklearn"], j["wgtrain"]
print(f"| MNIST 784-100-10 @200, 10 epochs, scikit-learn | cpu, {j['cores']} cores | "
      f"{s['s_per_epoch']:.3f} s/epoch, test accuracy {s['test_accuracy']:.4f} | {now} | "
      f"`python3 bench/sklearn_mnist.py` ({s['tool']}) |")
print(f"| MNIST 784-100-10 @200, 10 epochs, wgtrain | cpu, {j['cores']} cores | "
      f"{w['s_per_epoch']:.3f} s/epoch ({j['speedup']:.2f}x scikit-learn), test accuracy "
      f"{w['test_accuracy']:.4f} | {now} | `{w['command']}` then `wgtrain eval mnist.safetensors mnist_test.csv.gz` |")
EOF
else
    skip "MNIST vs scikit-learn" "" "bench/sklearn_mnist.py failed (scikit-learn, pandas or the data missing)"
fi
PARITY=$(mktemp)
if [ $gpu_only = 1 ]; then
    { echo "(CPU rows and quality parity: not run by SUITE=gpu)"; echo; echo "\`wgtrain tune\` output:"; echo; echo '```'; cat "$TUNELOG"; echo '```'; } >"$PARITY"
else
    python3 bench/sklearn_compare.py --markdown >"$PARITY" 2>/dev/null || echo "(bench/sklearn_compare.py failed)" >"$PARITY"
fi

MARK=results
if [ $gpu_only = 1 ]; then MARK=gpu-results; fi
python3 - bench/RESULTS.md "$ROWS" "$PARITY" "$NOW" "$(nproc)" "$MARK" <<'EOF'
import sys, re
path, rows, parity, now, cores, mark = sys.argv[1:7]
text = open(path).read()
tail = ("\nQuality parity (`python3 bench/sklearn_compare.py --markdown`, seeds 0..4, held-out split):\n\n"
        if mark == "results" else "\n")
block = (f"<!-- {mark}:start -->\nMeasured {now} by `bench/run.sh` on a machine with {cores} cores.\n\n"
         "| benchmark | device | figure | date | command |\n|---|---|---|---|---|\n"
         + open(rows).read() + tail + open(parity).read() + f"<!-- {mark}:end -->")
pattern = rf"<!-- {mark}:start -->.*<!-- {mark}:end -->"
if re.search(pattern, text, flags=re.S):
    text = re.sub(pattern, lambda _: block, text, flags=re.S)
else:
    text += "\n" + block + "\n"
open(path, "w").write(text)
EOF
rm -f "$ROWS" "$MNIST" "$PARITY" "$TUNELOG"
echo "wrote bench/RESULTS.md" >&2
