#!/usr/bin/env bash
# On the lent GPU machine (see bench/device_prep.sh): unpack the carried Vulkan loader, check
# every kernel on the real GPU, then run the GPU suite against PyTorch/cuBLAS. Everything it
# measures lands in $OUT as it goes, so a cut-short run still brings its rows back.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$(mktemp -d)}
if ! ldconfig -p | grep -q libvulkan && ls .gl/*.deb >/dev/null 2>&1; then
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
fi
if ! ls /usr/share/vulkan/icd.d/*nvidia* /etc/vulkan/icd.d/*nvidia* >/dev/null 2>&1 &&
    [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
    export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
    export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
fi
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp} WGTRAIN_BIN=${WGTRAIN_BIN:-target/release/wgtrain}
export WGTRAIN_CACHE_DIR="$OUT/cache" ROWS_FILE="$OUT/rows.md" LIMIT=${LIMIT:-60}
{ date -u; nvidia-smi -L; nproc; } >"$OUT/machine.txt" 2>&1
"$WGTRAIN_BIN" devices >"$OUT/devices.txt" 2>&1
# Correctness first: every op and matmul variant against the CPU reference on this GPU.
timeout 120 "$WGTRAIN_BIN" check --device gpu >"$OUT/check.txt" 2>&1
echo "check exit $?" >>"$OUT/check.txt"
tail -1 "$OUT/check.txt"
SUITE=gpu timeout 420 bash bench/run.sh 2>"$OUT/suite.log"
echo "suite exit $?" >>"$OUT/suite.log"
cp bench/RESULTS.md "$OUT/RESULTS.md"
cat "$OUT/rows.md" 2>/dev/null
