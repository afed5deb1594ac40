# Shared by tests/e2e/test_1*_monitor_*.sh (sourced). They run where /dev/kvm can boot Linux:
# inside the parent instance (`cloister parent-instance run -- bash tests/e2e/test_10_...sh`)
# or on a host with hardware KVM. Each test prints PASS/FAIL lines and exits non-zero on failure.
set -uo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${CLOISTER_BUILD_DIR:-$top/build}
monitor=$build/src/vmm/cloister-monitor
cloister=$build/src/cli/cloister
work=$build/e2e-monitor
mkdir -p "$work"

failures=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
finish() {
	if [ "$failures" -eq 0 ]; then
		echo "PASS: $(basename "$0")"
		exit 0
	fi
	echo "FAIL: $(basename "$0") ($failures failed)"
	exit 1
}

enclave_kernel() {
	local dir
	dir=$("$top/scripts/fetch-kernel.sh" enclave) || return 1
	ls "$dir"/boot/vmlinuz-* | head -1
}

# The test init (monitor-init.c) in a one-file newc initramfs: $work/initrd.cpio
build_initrd() {
	[ -f "$work/initrd.cpio" ] && [ "$work/initrd.cpio" -nt "$top/tests/e2e/monitor-init.c" ] &&
		return 0
	rm -rf "$work/root" && mkdir -p "$work/root" || return 1
	gcc -static -Os -s -o "$work/root/init" "$top/tests/e2e/monitor-init.c" || return 1
	(cd "$work/root" && echo init | cpio -o -H newc --quiet >"$work/initrd.cpio.tmp") &&
		mv "$work/initrd.cpio.tmp" "$work/initrd.cpio"
}

have_build_eif() {
	"$cloister" build-eif --help >/dev/null 2>&1
}

# make_eif OUT CMDLINE KERNEL [RAMDISK...]: an EIF from the project's own builder.
make_eif() {
	local out=$1 cmdline=$2 kernel=$3
	shift 3
	local rd=() r
	for r in "$@"; do rd+=(--ramdisk "$r"); done
	"$cloister" build-eif --kernel "$kernel" --cmdline "$cmdline" "${rd[@]}" \
		--output "$out" >/dev/null
}

# image_args CMDLINE KERNEL RAMDISK: the monitor arguments that boot these, from an EIF when
# `cloister build-eif` exists, else directly (development path). Sets the array IMAGE_ARGS.
image_args() {
	local cmdline=$1 kernel=$2 ramdisk=$3 eif
	if have_build_eif; then
		# Keyed by content, not names: tests rebuild their initramfs in place.
		eif=$work/$( (echo "$cmdline"; cat "$kernel" "$ramdisk") | md5sum | cut -c1-12).eif
		[ -f "$eif" ] || make_eif "$eif" "$cmdline" "$kernel" "$ramdisk" || return 1
		IMAGE_ARGS=(--eif "$eif")
	else
		echo "note: cloister build-eif not available yet; booting kernel + initrd directly"
		IMAGE_ARGS=(--kernel "$kernel" --initrd "$ramdisk" --cmdline "$cmdline")
	fi
}

# Make sure at least MiB of 2 MiB hugepages are free (root in the parent instance).
ensure_hugepages() {
	local want=$(($1 / 2)) free total
	free=$(cat /sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages)
	total=$(cat /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages)
	if [ "$free" -lt "$want" ]; then
		echo $((total + want - free)) >/proc/sys/vm/nr_hugepages 2>/dev/null || true
	fi
}

free_hugepages() {
	cat /sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages
}

# run_monitor OUTFILE ERRFILE TIMEOUT ARGS...: run the monitor, return its exit status.
run_monitor() {
	local out=$1 err=$2 t=$3
	shift 3
	timeout -k 5 "$t" "$monitor" "$@" >"$out" 2>"$err"
}

# make_blob_kernel OUT CODE: a bzImage-shaped file whose 64-bit entry runs CODE (a printf
# format of \x escapes). Setup header per Documentation/arch/x86/boot.rst: 1 setup sector, boot
# flag, "HdrS", protocol 2.15, XLF_KERNEL_64; protected-mode code at file offset 1024, entry at
# +0x200.
make_blob_kernel() {
	local out=$1 code=$2
	{
		head -c $((0x1f1)) /dev/zero
		printf '\x01'                  # 0x1f1 setup_sects
		head -c $((0x1fe - 0x1f2)) /dev/zero
		printf '\x55\xaa'              # 0x1fe boot_flag
		printf '\xeb\x66'              # 0x200 jump: header ends at 0x268
		printf 'HdrS'                  # 0x202
		printf '\x0f\x02'              # 0x206 version 2.15
		head -c $((0x22c - 0x208)) /dev/zero
		printf '\xff\xff\xff\x7f'      # 0x22c initrd_addr_max
		printf '\x00\x00\x20\x00'      # 0x230 kernel_alignment
		printf '\x00\x00'              # 0x234
		printf '\x01\x00'              # 0x236 xloadflags: XLF_KERNEL_64
		printf '\xff\x07\x00\x00'      # 0x238 cmdline_size
		head -c $((0x260 - 0x23c)) /dev/zero
		printf '\x00\x00\x10\x00'      # 0x260 init_size
		head -c $((1024 - 0x264)) /dev/zero
		head -c $((0x200)) /dev/zero   # 32-bit entry area (unused)
		printf "$code"
		head -c 4096 /dev/zero
	} >"$out"
}
