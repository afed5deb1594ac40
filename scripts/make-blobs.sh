#!/usr/bin/env bash
# Usage: scripts/make-blobs.sh [BUILD_DIR]
# Assembles the default enclave blobs (docs/build-enclave.md): fetches the pinned Debian cloud
# kernel (scripts/fetch-kernel.sh enclave), then `cloister blobs` copies bzImage, its config,
# cloister-init and the decompressed vsock/virtio-mmio/nsm modules of exactly that kernel into
# ~/.cache/cloister/blobs/<release>/ and points blobs/default at it. Prints the directory.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
kernel=$("$here/fetch-kernel.sh" enclave)
exec "$build/src/cli/cloister" blobs --kernel-dir "$kernel" --init "$build/guest/init/cloister-init"
