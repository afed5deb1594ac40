#!/usr/bin/env bash
# Install everything cloister needs on Debian 12 (bookworm). Idempotent: run it as often as you
# like; it does nothing that is already done. Needs root (or sudo) for apt.
#
# What it installs and why:
#   build      meson ninja-build pkg-config gcc clang (libFuzzer, sanitizers) clang-format
#   libraries  libssl-dev (SHA-384, ECDSA, X.509) libcbor-dev libarchive-dev libseccomp-dev
#              libjson-c-dev libcmocka-dev zlib1g-dev (EIF CRC-32) libzstd-dev (the monitor
#              unpacks the enclave kernel once and caches it: docs/design.md)
#   parent     qemu-system-x86 10 from bookworm-backports (TCG with an emulated AMD-V CPU),
#   instance   busybox-static, cpio, xz-utils, zstd (kernel modules and initramfs)
#   images     umoci skopeo (tests/cli/test_build_enclave_tools.py makes OCI images offline with
#              the real tools and exports them as oci-archive / docker-archive)
#   bench      python3-matplotlib (plots), hyperfine
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	SUDO="sudo"
fi

BACKPORTS=/etc/apt/sources.list.d/bookworm-backports.sources
if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
	echo "setup: adding bookworm-backports (for QEMU 10 and the 6.12 kernels)" >&2
	$SUDO tee "$BACKPORTS" >/dev/null <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
	$SUDO rm -f /var/lib/apt/cloister-updated
fi

PACKAGES=(
	meson ninja-build pkg-config gcc clang clang-format libclang-rt-14-dev
	libssl-dev libcbor-dev libarchive-dev libseccomp-dev libjson-c-dev libcmocka-dev zlib1g-dev
	libzstd-dev
	busybox-static cpio xz-utils zstd kmod umoci skopeo
	python3 python3-matplotlib hyperfine openssl
)
BACKPORT_PACKAGES=(qemu-system-x86)

missing=()
for p in "${PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
qemu_ok=0
if command -v qemu-system-x86_64 >/dev/null &&
	qemu-system-x86_64 --version | grep -Eq 'version (9|[1-9][0-9])\.'; then
	qemu_ok=1
fi

if [ ${#missing[@]} -eq 0 ] && [ $qemu_ok -eq 1 ]; then
	exit 0
fi

export DEBIAN_FRONTEND=noninteractive
# apt-get update once per setup run that needs packages: lists may be absent or stale.
$SUDO apt-get update -q >/dev/null 2>&1 || $SUDO apt-get update -q
if [ ${#missing[@]} -gt 0 ]; then
	echo "setup: installing ${missing[*]}" >&2
	$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
if [ $qemu_ok -eq 0 ]; then
	echo "setup: installing QEMU from bookworm-backports" >&2
	$SUDO apt-get install -y -q --no-install-recommends -t bookworm-backports \
		"${BACKPORT_PACKAGES[@]}" qemu-system-data >/dev/null
fi
