#!/usr/bin/env bash
# Usage: scripts/fetch-kernel.sh parent|enclave
# Takes the pinned Debian kernel package (scripts/versions.env) with `apt-get download` and
# unpacks it with `dpkg-deb -x` into the cache — nothing is installed on the host. Prints the
# unpacked directory, which holds boot/vmlinuz-<release> and lib/modules/<release>/.
# Cache: $CLOISTER_CACHE (default ~/.cache/cloister), reused between runs.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"

case "${1:-}" in
parent) pkg=$CLOISTER_KERNEL_PARENT_PKG ;;
enclave) pkg=$CLOISTER_KERNEL_ENCLAVE_PKG ;;
*) echo "usage: $0 parent|enclave" >&2; exit 2 ;;
esac

cache=${CLOISTER_CACHE:-${HOME:-/root}/.cache/cloister}
dest=$cache/kernels/$pkg
if [ -f "$dest/.complete" ]; then
	echo "$dest"
	exit 0
fi

mkdir -p "$cache/debs"
tmp=$(mktemp -d "$cache/debs/dl.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && apt-get download -q "$pkg" >/dev/null 2>&1) || {
	# The package lists may be stale or missing on a fresh machine.
	apt-get update -q >/dev/null 2>&1 || true
	(cd "$tmp" && apt-get download -q "$pkg" >/dev/null) || {
		echo "fetch-kernel: cannot download $pkg; is bookworm-backports configured? (run scripts/setup.sh)" >&2
		exit 1
	}
}
rm -rf "$dest.partial"
mkdir -p "$dest.partial"
dpkg-deb -x "$tmp"/*.deb "$dest.partial"
touch "$dest.partial/.complete"
rm -rf "$dest"
mv "$dest.partial" "$dest"
echo "$dest"
