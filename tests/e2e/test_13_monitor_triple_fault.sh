#!/usr/bin/env bash
# e2e-timeout: 600
# A guest that triple-faults is reported as such: a bzImage-shaped blob whose 64-bit entry
# loads a null IDT and executes ud2 (#UD -> no IDT -> #DF -> shutdown).
. "$(dirname "$0")/monitor-lib.sh"

build_initrd || { fail "cannot build the test initramfs"; finish; }
ensure_hugepages 128

# 64-bit entry: lidt [rip+2] (the 10 zero bytes after ud2: limit 0, base 0); ud2
blob=$work/triplefault.bzImage
make_blob_kernel "$blob" '\x0f\x01\x1d\x02\x00\x00\x00\x0f\x0b'

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
