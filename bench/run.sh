#!/usr/bin/env bash
# The benchmark suite: builds release, runs wgtrain bench on --device cpu and --device gpu,
# the PyTorch twin where torch imports, the MNIST CPU comparison and the scikit-learn quality
# parity, and writes the measured rows into bench/RESULTS.md between the markers
# (<!-- results:start --> … <!-- results:end -->). Run from anywhere:
#
#   bench/run.sh            # the whole suite
#   QUICK=1 bench/run.sh    # fewer steps everywhere (a smoke run)
#
# Sizes too slow for a device are skipped with a row that says so (lavapipe, Mesa's Vulkan on
# the CPU, runs the WGSL kernels at about 1 GFLOP/s on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"

cargo build --release --quiet
W=target/release/wgtrain
ROWS=$(mktemp)
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

# row NAME -- COMMAND…: runs COMMAND (which prints one JSON object) and records a table row.
row() {
    local name="$1"
    shift 2
    echo ">> $name: $*" >&2
    local json
    if ! json=$("$@" --json 2>/dev/null | tail -1); then
        echo "| $name | (failed) | | $NOW | \`$*\` |" >>"$ROWS"
        return
    fi
    python3 - "$name" "$NOW" "$*" "$json" >>"$ROWS" <<'EOF'
import json, sys
name, now, cmd, j = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
cmd = cmd.replace("target/release/wgtrain", "wgtrain")
if j["mode"] == "train":
    fig = (f"{j['steps_per_s']:.1f} steps/s, {j['samples_per_s']:.0f} samples/s "
           f"({j['median_ms_per_step']:.3f} ms/step, median of {j['repeats']}x{j['steps']})")
else:
    fig = f"{j['gflops']:.1f} GFLOP/s ({j['median_ms']:.1f} ms, median of {j['repeats']}x{j['iters']})"
print(f"| {name} | {j['device']} | {fig} | {now} | `{cmd}` |")
EOF
}
skip() { echo "| $1 | $2 | skipped: $3 | $NOW | |" >>"$ROWS"; }

LECTURE="--layers 56,100,100,100,1 --batch 256"
BIG="--layers 784,4096,4096,10 --batch 4096"

# ---- wgtrain, CPU --------------------------------------------------------------------------
row "lecture 56-100-100-100-1 @256, wgtrain" -- $W bench $LECTURE --device cpu $(q "" "--steps 20 --repeats 2")
row "784-4096-4096-10 @4096, wgtrain" -- $W bench $BIG --device cpu --steps $(q 3 1) --warmup 1 --repeats 3
row "matmul 4096³, wgtrain" -- $W bench --matmul 4096 --device cpu --steps 2 --warmup 1 --repeats 3

# ---- wgtrain, GPU ------------------------------------------------------------------------
if [ $have_gpu = 1 ] && [ $soft_gpu = 1 ]; then
    row "lecture 56-100-100-100-1 @256, wgtrain" -- $W bench $LECTURE --device gpu --steps $(q 50 10) --warmup 5 --repeats 3
    skip "784-4096-4096-10 @4096, wgtrain" "lavapipe" "about 460 GFLOP per step at ~1 GFLOP/s is ~8 min per step"
    skip "matmul 4096³, wgtrain" "lavapipe" "137 GFLOP at ~1 GFLOP/s is > 2 min per product"
    row "matmul 1024³ (instead of 4096³), wgtrain" -- $W bench --matmul 1024 --device gpu --steps 1 --warmup 1 --repeats 3
elif [ $have_gpu = 1 ]; then
    row "lecture 56-100-100-100-1 @256, wgtrain" -- $W bench $LECTURE --device gpu
    row "784-4096-4096-10 @4096, wgtrain" -- $W bench $BIG --device gpu --steps $(q 50 5) --warmup 5
    row "matmul 4096³, wgtrain" -- $W bench --matmul 4096 --device gpu
else
    skip "all GPU rows" "none" "no GPU adapter (not even lavapipe)"
fi

# ---- PyTorch -----------------------------------------------------------------------------
if [ $have_torch = 1 ]; then
    P="python3 bench/pytorch_mlp.py"
    if python3 -c 'import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)'; then
        row "lecture 56-100-100-100-1 @256, PyTorch eager" -- $P $LECTURE
        row "784-4096-4096-10 @4096, PyTorch eager" -- $P $BIG --steps $(q 50 5) --warmup 5
        row "matmul 4096³, torch.mm (cuBLAS)" -- $P --matmul 4096
    fi
    row "lecture 56-100-100-100-1 @256, PyTorch eager" -- $P $LECTURE --device cpu $(q "" "--steps 20 --repeats 2")
    row "784-4096-4096-10 @4096, PyTorch eager" -- $P $BIG --device cpu --steps $(q 3 1) --warmup 1 --repeats 3
    row "matmul 4096³, torch.mm" -- $P --matmul 4096 --device cpu --steps 2 --warmup 1 --repeats 3
else
    skip "PyTorch rows" "" "python3 cannot import torch"
fi

# ---- MNIST on the CPU against scikit-learn, and the quality parity --------------------------
MNIST=$(mktemp)
if python3 bench/sklearn_mnist.py --json >"$MNIST" 2>/dev/null; then
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
python3 bench/sklearn_compare.py --markdown >"$PARITY" 2>/dev/null || echo "(bench/sklearn_compare.py failed)" >"$PARITY"

python3 - bench/RESULTS.md "$ROWS" "$PARITY" "$NOW" "$(nproc)" <<'EOF'
import sys, re
path, rows, parity, now, cores = sys.argv[1:6]
text = open(path).read()
block = (f"<!-- results:start -->\nMeasured {now} by `bench/run.sh` on a machine with {cores} cores.\n\n"
         "| benchmark | device | figure | date | command |\n|---|---|---|---|---|\n"
         + open(rows).read()
         + "\nQuality parity (`python3 bench/sklearn_compare.py --markdown`, seeds 0..4, held-out split):\n\n"
         + open(parity).read() + "<!-- results:end -->")
text = re.sub(r"<!-- results:start -->.*<!-- results:end -->", lambda _: block, text, flags=re.S)
open(path, "w").write(text)
EOF
rm -f "$ROWS" "$MNIST" "$PARITY"
echo "wrote bench/RESULTS.md" >&2
