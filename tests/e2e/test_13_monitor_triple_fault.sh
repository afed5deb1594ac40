#!/usr/bin/env bash
# A guest that triple-faults is reported as such: a bzImage-shaped blob whose 64-bit entry
# loads a null IDT and executes ud2 (#UD -> no IDT -> #DF -> shutdown).
. "$(dirname "$0")/monitor-lib.sh"

build_initrd || { fail "cannot build the test initramfs"; finish; }
ensure_hugepages 128

# Setup header (Documentation/arch/x86/boot.rst): 1 setup sector, boot flag, "HdrS", protocol
# 2.15, XLF_KERNEL_64; protected-mode code at file offset 1024, entry at +0x200.
blob=$work/triplefault.bzImage
{
	head -c $((0x1f1)) /dev/zero
	printf '\x01'                              # 0x1f1 setup_sects
	head -c $((0x1fe - 0x1f2)) /dev/zero
	printf '\x55\xaa'                          # 0x1fe boot_flag
	printf '\xeb\x66'                          # 0x200 jump: header ends at 0x268
	printf 'HdrS'                              # 0x202
	printf '\x0f\x02'                          # 0x206 version 2.15
	head -c $((0x22c - 0x208)) /dev/zero
	printf '\xff\xff\xff\x7f'                  # 0x22c initrd_addr_max
	printf '\x00\x00\x20\x00'                  # 0x230 kernel_alignment
	printf '\x00\x00'                          # 0x234
	printf '\x01\x00'                          # 0x236 xloadflags: XLF_KERNEL_64
	printf '\xff\x07\x00\x00'                  # 0x238 cmdline_size
	head -c $((0x260 - 0x23c)) /dev/zero
	printf '\x00\x00\x10\x00'                  # 0x260 init_size
	head -c $((1024 - 0x264)) /dev/zero
	head -c $((0x200)) /dev/zero               # 32-bit entry area (unused)
	# 64-bit entry: lidt [rip+2] (10 zero bytes after ud2: limit 0, base 0); ud2
	printf '\x0f\x01\x1d\x02\x00\x00\x00\x0f\x0b'
	head -c 4096 /dev/zero
} >"$blob"

if have_build_eif; then
	make_eif "$work/triplefault.eif" "console=ttyS0" "$blob" "$work/initrd.cpio" ||
		{ fail "cannot build the EIF"; finish; }
	args=(--eif "$work/triplefault.eif")
else
	args=(--kernel "$blob" --initrd "$work/initrd.cpio" --cmdline "console=ttyS0")
fi
run_monitor "$work/tf.out" "$work/tf.err" 60 "${args[@]}" --memory 64 --cpu-count 1 --debug-mode
rc=$?
if [ "$rc" -eq 11 ] && grep -q "enclave ended: triple-fault" "$work/tf.err"; then
	pass "triple fault reported: $(grep 'enclave ended' "$work/tf.err")"
else
	fail "triple fault: exit $rc"
	cat "$work/tf.err"
fi
finish
