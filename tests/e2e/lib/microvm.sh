#!/usr/bin/env bash
# The reference enclave-like boot: the Debian cloud kernel under QEMU `microvm` with KVM.
# Later benchmarks compare cloister's own monitor against exactly this launch, so it lives here
# once and both tests/e2e/ and bench/ call it.
#
#   microvm.sh initramfs --init BIN --out FILE [--vsock-modules KERNEL_PKG_DIR]
#       Pack BIN as /init (plus /dev, and with --vsock-modules the cloud kernel's virtio_mmio and
#       vsock modules, decompressed, in /modules) into a newc cpio archive.
#   microvm.sh boot --kernel BZIMAGE --initrd FILE [--memory MIB] [--cpus N] [--cid CID]
#                   [--append "ARGS"]
#       Exec QEMU; the guest console (isa-serial) is on stdout, QEMU's messages on stderr.
#       Without --cid there is no vsock device.
#
# Why these options (docs/parent-instance.md): the cloud kernel has no virtio-mmio command-line
# devices and no MP tables, so ACPI must stay on (it describes the CPUs and virtio-mmio);
# microvm without an RTC makes the firmware crawl, so rtc=on; -no-reboot turns a guest reboot
# into a QEMU exit.
set -euo pipefail

die() { echo "microvm.sh: $*" >&2; exit 2; }

cmd_initramfs() {
	local init="" out="" kdir=""
	while [ $# -gt 0 ]; do
		case $1 in
		--init) init=$2; shift 2 ;;
		--out) out=$2; shift 2 ;;
		--vsock-modules) kdir=$2; shift 2 ;;
		*) die "initramfs: unknown option $1" ;;
		esac
	done
	[ -n "$init" ] && [ -n "$out" ] || die "initramfs: --init and --out are required"
	[ -x "$init" ] || die "initramfs: $init is not an executable (build the project first)"
	local stage
	stage=$(mktemp -d)
	trap 'rm -rf "$stage"' RETURN
	mkdir -p "$stage/dev"
	cp "$init" "$stage/init"
	if [ -n "$kdir" ]; then
		mkdir -p "$stage/modules"
		local m f
		for m in virtio_mmio vsock vmw_vsock_virtio_transport_common vmw_vsock_virtio_transport; do
			f=$(find "$kdir"/lib/modules/*/kernel -name "$m.ko*" | head -1)
			[ -n "$f" ] || die "initramfs: module $m not found under $kdir"
			case $f in
			*.xz) xz -dc "$f" >"$stage/modules/$m.ko" ;;
			*.zst) zstd -qdc "$f" >"$stage/modules/$m.ko" ;;
			*) cp "$f" "$stage/modules/$m.ko" ;;
			esac
		done
	fi
	(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$out"
}

cmd_boot() {
	local kernel="" initrd="" mem=256 cpus=1 cid="" append="console=ttyS0 panic=-1 reboot=t quiet mitigations=off"
	while [ $# -gt 0 ]; do
		case $1 in
		--kernel) kernel=$2; shift 2 ;;
		--initrd) initrd=$2; shift 2 ;;
		--memory) mem=$2; shift 2 ;;
		--cpus) cpus=$2; shift 2 ;;
		--cid) cid=$2; shift 2 ;;
		--append) append=$2; shift 2 ;;
		*) die "boot: unknown option $1" ;;
		esac
	done
	[ -r "$kernel" ] || die "boot: kernel '$kernel' not readable (scripts/fetch-kernel.sh enclave)"
	[ -r "$initrd" ] || die "boot: initrd '$initrd' not readable"
	[ -w /dev/kvm ] || die "boot: /dev/kvm is not usable here (run inside the parent instance)"
	local vsock=()
	[ -z "$cid" ] || vsock=(-device "vhost-vsock-device,guest-cid=$cid")
	exec qemu-system-x86_64 -nodefaults -no-user-config -display none -monitor none -no-reboot \
		-machine microvm,rtc=on,acpi=on,isa-serial=on -accel kvm -cpu host \
		-m "$mem" -smp "$cpus" -kernel "$kernel" -initrd "$initrd" -append "$append" \
		-serial stdio "${vsock[@]}" </dev/null
}

case ${1:-} in
initramfs) shift; cmd_initramfs "$@" ;;
boot) shift; cmd_boot "$@" ;;
*) die "usage: microvm.sh initramfs|boot [OPTIONS] (see the header of this script)" ;;
esac
