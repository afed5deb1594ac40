#!/usr/bin/env bash
# Usage: tests/data/images/make-demo-oci.sh OUT_DIR [BUILD_DIR]
# The demo image (docs/build-enclave.md, "Demo image") as an OCI layout at OUT_DIR and an
# oci-archive at OUT_DIR.tar, without Docker: one layer holding only the static
# cloister-demo-hello (guest/demo/hello.c, from BUILD_DIR, default build/) as /hello.
# Cmd ["/hello"]: greets, reports an attestation document, echoes on vsock port 5000.
set -euo pipefail
out=${1:?usage: $0 OUT_DIR [BUILD_DIR]}
here=$(cd "$(dirname "$0")" && pwd)
build=${2:-$here/../../../build}
bin=$build/guest/demo/cloister-demo-hello
[ -x "$bin" ] || { echo "$bin is missing: build the project first" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/rootfs/tmp"
chmod 1777 "$work/rootfs/tmp"
cp "$bin" "$work/rootfs/hello"
chmod 0755 "$work/rootfs/hello"
config='{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/"],"Cmd":["/hello"]},"rootfs":{"type":"layers","diff_ids":["@DIFF_ID@"]},"history":[{"created_by":"tests/data/images/make-demo-oci.sh"}]}'
# shellcheck source=oci-layout.sh
. "$here/oci-layout.sh"
oci_layout "$work/rootfs" "$out" "$config"
echo "$out"
