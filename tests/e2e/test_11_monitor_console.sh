#!/usr/bin/env bash
# e2e-timeout: 600
# Debug mode shows the kernel log on the console; production mode shows nothing at all (the
# enclave still boots: exit status 0 means its init powered it off).
. "$(dirname "$0")/monitor-lib.sh"

kernel=$(enclave_kernel) || { fail "no enclave kernel"; finish; }
build_initrd || { fail "cannot build the test initramfs"; finish; }
ensure_hugepages 512
image_args "console=ttyS0 panic=-1 reboot=k" "$kernel" "$work/initrd.cpio" ||
	{ fail "cannot build the EIF"; finish; }

rm -f "$work/console.log"
run_monitor "$work/debug.out" "$work/debug.err" 120 "${IMAGE_ARGS[@]}" --memory 256 \
	--cpu-count 1 --debug-mode --console "$work/console.log"
rc=$?
if [ "$rc" -eq 0 ] && grep -q "Linux version 6.12" "$work/console.log" &&
	grep -q "init reached" "$work/console.log"; then
	pass "debug mode: kernel log and init output in the console file"
else
	fail "debug mode: exit $rc, console: $(wc -c <"$work/console.log" 2>/dev/null) bytes"
	tail -n 5 "$work/debug.err"
fi
# KVM emulates the LAPIC's TSC-deadline mode but leaves it out of its supported CPUID table; a
# guest not told of it spends its boot calibrating the APIC timer.
if grep -q "TSC deadline timer available" "$work/console.log"; then
	pass "the guest is given the LAPIC's TSC-deadline timer"
else
	fail "the guest's kernel log does not say 'TSC deadline timer available'"
fi
# KVM leaves the brand string (CPUID 0x80000002-4) empty; the guest is to see the host's, as
# it would on Nitro.
brand=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
if [ -n "$brand" ] && grep -qF "smpboot: CPU0: $brand (" "$work/console.log"; then
	pass "the guest's CPU is the host's: $brand"
else
	fail "the guest does not name its CPU '$brand': $(grep -m1 'smpboot: CPU0' "$work/console.log")"
fi

run_monitor "$work/prod.out" "$work/prod.err" 120 "${IMAGE_ARGS[@]}" --memory 256 --cpu-count 1
rc=$?
if [ "$rc" -eq 0 ] && [ ! -s "$work/prod.out" ] && ! grep -q "Linux version" "$work/prod.err"; then
	pass "production mode: booted and powered off with no console output"
else
	fail "production mode: exit $rc, stdout $(wc -c <"$work/prod.out") bytes"
	head -n 5 "$work/prod.out" "$work/prod.err"
fi

run_monitor "$work/prodc.out" "$work/prodc.err" 30 "${IMAGE_ARGS[@]}" --memory 256 \
	--cpu-count 1 --console "$work/nope.log"
rc=$?
if [ "$rc" -eq 2 ] && [ ! -e "$work/nope.log" ] && grep -q "needs --debug-mode" "$work/prodc.err"; then
	pass "production mode refuses --console"
else
	fail "production mode with --console: exit $rc"
fi
finish
