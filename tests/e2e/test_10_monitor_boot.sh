#!/usr/bin/env bash
# e2e-timeout: 600
# The Debian cloud kernel, from an EIF, reaches the test init with 1 and with 2 vCPUs and powers
# off cleanly (exit status 0).
. "$(dirname "$0")/monitor-lib.sh"

kernel=$(enclave_kernel) || { fail "no enclave kernel (scripts/fetch-kernel.sh enclave)"; finish; }
build_initrd || { fail "cannot build the test initramfs"; finish; }
ensure_hugepages 512
cmdline="console=ttyS0 panic=-1 reboot=k quiet"
image_args "$cmdline" "$kernel" "$work/initrd.cpio" || { fail "cannot build the EIF"; finish; }

for n in 1 2; do
	run_monitor "$work/boot$n.out" "$work/boot$n.err" 120 "${IMAGE_ARGS[@]}" --memory 256 \
		--cpu-count "$n" --debug-mode
	rc=$?
	if [ "$rc" -eq 0 ] && grep -q "init reached, $n cpus online" "$work/boot$n.out" &&
		grep -q "enclave ended: poweroff" "$work/boot$n.err"; then
		pass "$n vCPU(s): init reached with $n CPUs online, powered off, exit 0"
	else
		fail "$n vCPU(s): exit $rc"
		tail -n 20 "$work/boot$n.out" "$work/boot$n.err"
	fi
done
finish
