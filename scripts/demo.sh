#!/usr/bin/env bash
# The main job: build a demo enclave image, boot it, talk to it, verify its attestation.
# Each stage runs as soon as the part of cloister it needs exists; see README.md.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bash scripts/setup.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
echo "cloister built: $(build/src/cli/cloister --version)"
