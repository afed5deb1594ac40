#!/usr/bin/env bash
# Usage: scripts/build-demo-image.sh [--measure] [BUILD_DIR]
# Builds the demo enclave image without Docker (docs/demo.md):
#   1. blobs from the pinned Debian cloud kernel (scripts/fetch-kernel.sh enclave) and this
#      tree's cloister-init, into BUILD_DIR/demo/blobs (private: the shared default blobs in
#      ~/.cache/cloister are left alone);
#   2. a root file system holding only the static guest/demo app as /demo;
#   3. `cloister build-enclave --rootfs … --cmd /demo` → BUILD_DIR/demo/demo.eif, with its
#      nitro-cli style measurements in BUILD_DIR/demo/demo.json.
# The build time is pinned ($SOURCE_DATE_EPOCH, else the time of the last commit), so the same
# tree gives the same PCRs. The kernel command line gets "quiet": every console byte is a VM
# exit, and in a nested parent instance the kernel's boot log alone costs seconds.
# --measure builds demo-measured.eif instead (measured launch: PCR16 = cmd + env, locked).
# Prints the EIF's path on stdout; progress on stderr.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
measure=()
name=demo
while [ $# -gt 0 ]; do
	case $1 in
	--measure) measure=(--measure); name=demo-measured; shift ;;
	-*) echo "usage: $0 [--measure] [BUILD_DIR]" >&2; exit 2 ;;
	*) break ;;
	esac
done
build=$(cd "${1:-$here/../build}" && pwd)
cli=$build/src/cli/cloister
app=$build/guest/demo/cloister-demo
init=$build/guest/init/cloister-init
for f in "$cli" "$app" "$init"; do
	[ -x "$f" ] || { echo "build-demo-image: $f is missing; build first (ninja -C build)" >&2; exit 1; }
done
out=$build/demo
mkdir -p "$out"

kdir=$(bash "$here/fetch-kernel.sh" enclave)
# Blobs: rebuilt when cloister-init changed (it is part of PCR1).
if [ ! -f "$out/blobs/init" ] || ! cmp -s "$init" "$out/blobs/init" || [ ! -f "$out/blobs/bzImage" ]; then
	rm -rf "$out/blobs.tmp"
	"$cli" blobs --kernel-dir "$kdir" --init "$init" --output "$out/blobs.tmp" >/dev/null
	cmd=$(cat "$out/blobs.tmp/cmdline")
	case " $cmd " in *" quiet "*) ;; *) printf '%s quiet\n' "$cmd" >"$out/blobs.tmp/cmdline" ;; esac
	rm -rf "$out/blobs" && mv "$out/blobs.tmp" "$out/blobs"
fi

rm -rf "$out/rootfs" && mkdir -p "$out/rootfs"
install -m 0755 "$app" "$out/rootfs/demo"

if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
	SOURCE_DATE_EPOCH=$(git -C "$here/.." log -1 --format=%ct 2>/dev/null || echo 0)
fi
export SOURCE_DATE_EPOCH
"$cli" build-enclave --rootfs "$out/rootfs" --cmd /demo --blobs "$out/blobs" "${measure[@]}" \
	--name cloister-demo --version 1 --output-file "$out/$name.eif" >"$out/$name.json"
echo "$out/$name.eif"
