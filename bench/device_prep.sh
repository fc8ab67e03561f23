#!/usr/bin/env bash
# Here, before a session's first call to the lent GPU machine (it has no Rust and no Vulkan
# loader, and reaches no network): build the release binary and fetch the Vulkan/EGL loader
# packages into .gl/ (ignored by git). Then one device call runs the whole GPU suite:
#
#   run(command="bash bench/device.sh", carry=[".gl", "target/release/wgtrain"], timeout_s=600)
#
# and its $OUT brings back RESULTS.md (the suite's rows written in), the rows alone, `wgtrain
# devices` and `wgtrain check` output and the tuning log; copy RESULTS.md over bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release
mkdir -p .gl /tmp/amd64/partial
o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
# shellcheck disable=SC2086
apt-get $o update -qq
# shellcheck disable=SC2086
(cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
ls -la .gl target/release/wgtrain
