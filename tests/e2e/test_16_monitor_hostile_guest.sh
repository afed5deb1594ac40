#!/usr/bin/env bash
# e2e-timeout: 600
# A hostile guest ends its own enclave, with the reason logged, and the monitor stays in a
# defined state: a "kernel" that programs the NSM's virtio-mmio queue 0 with its descriptor
# table outside guest RAM and sets QueueReady. Expected: exit status 13 (guest-violation).
. "$(dirname "$0")/monitor-lib.sh"

build_initrd || { fail "cannot build the test initramfs"; finish; }
ensure_hugepages 128
have_build_eif || { echo "cloister build-eif is not available"; exit 77; }

# mov eax, 0xd0000000             (the first virtio-mmio window, layout.h)
# mov dword [rax+0x38], 2         QueueNum (the NSM queue holds 2)
# mov dword [rax+0x80], 0xfffff000  QueueDescLow
# mov dword [rax+0x84], 7         QueueDescHigh: 0x7_ffff_f000, far outside 64 MiB of RAM
# mov dword [rax+0x90], 0x2000    QueueDriverLow
# mov dword [rax+0xa0], 0x3000    QueueDeviceLow
# mov dword [rax+0x44], 1         QueueReady
# hlt; jmp back to hlt
code='\xb8\x00\x00\x00\xd0'
code+='\xc7\x40\x38\x02\x00\x00\x00'
code+='\xc7\x80\x80\x00\x00\x00\x00\xf0\xff\xff'
code+='\xc7\x80\x84\x00\x00\x00\x07\x00\x00\x00'
code+='\xc7\x80\x90\x00\x00\x00\x00\x20\x00\x00'
code+='\xc7\x80\xa0\x00\x00\x00\x00\x30\x00\x00'
code+='\xc7\x40\x44\x01\x00\x00\x00'
code+='\xf4\xeb\xfd'
make_blob_kernel "$work/hostile.bzImage" "$code"
make_eif "$work/hostile.eif" "console=ttyS0" "$work/hostile.bzImage" "$work/initrd.cpio" ||
	{ fail "cannot build the EIF"; finish; }

mkdir -p "$work/ca"
run_monitor "$work/hostile.out" "$work/hostile.err" 60 --eif "$work/hostile.eif" --memory 64 \
	--cpu-count 1 --enclave-id i-0e2e0e2e0e2e0e2e0-enc0000000000000001 --ca-dir "$work/ca"
rc=$?
if [ "$rc" -eq 13 ] && grep -q "enclave ended: guest-violation: .*nsm: queue 0" \
	"$work/hostile.err" && grep -q "outside guest RAM" "$work/hostile.err"; then
	pass "hostile queue setup ended the enclave: $(grep 'enclave ended' "$work/hostile.err")"
else
	fail "hostile guest: exit $rc"
	cat "$work/hostile.err"
fi
finish
