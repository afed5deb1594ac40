#!/usr/bin/env bash
# e2e-timeout: 600
# How the enclave ended is in the exit status: a guest reboot is 10 whichever way Linux asks for
# it, a triple fault 11, SIGTERM to the monitor 14; --ready-fd says when the vCPUs run; while the
# enclave runs its RAM is hugetlb and fully present and each vCPU thread (vcpuN) is pinned to its
# --cpu-ids CPU; a monitor killed by SIGABRT leaves no core file; resources are released (all
# hugepages free again afterwards).
. "$(dirname "$0")/monitor-lib.sh"

kernel=$(enclave_kernel) || { fail "no enclave kernel"; finish; }
build_initrd || { fail "cannot build the test initramfs"; finish; }
ensure_hugepages 512
before=$(free_hugepages)

# Each reboot method Linux may use must reach the monitor (docs/direct-boot.md): the i8042
# (reboot=k, Nitro's default), the FADT reset register (reboot=a), port 0xCF9 (reboot=pci) all
# mean "reboot" (10); reboot=t triple-faults (11).
for method in k:10:keyboard a:10:0xcf9 pci:10:0xcf9 t:11:triple; do
	IFS=: read -r how want what <<<"$method"
	image_args "console=ttyS0 panic=-1 reboot=$how quiet e2e_end=reboot" "$kernel" \
		"$work/initrd.cpio" || { fail "cannot build the EIF"; finish; }
	run_monitor "$work/rb.out" "$work/rb.err" 120 "${IMAGE_ARGS[@]}" --memory 256 \
		--cpu-count 2 --debug-mode
	rc=$?
	if [ "$rc" -eq "$want" ] && grep -q "enclave ended: .*$what" "$work/rb.err" &&
		grep -q "init reached" "$work/rb.out"; then
		pass "guest reboot (reboot=$how): exit $rc, $(grep -o 'enclave ended: [^(]*' "$work/rb.err")"
	else
		fail "guest reboot (reboot=$how): exit $rc (want $want)"
		tail -n 5 "$work/rb.out" "$work/rb.err"
	fi
done

# kill_after_init OUT PID SIGNAL: once the test init says it is reached in OUT (or after 60 s),
# send SIGNAL to the monitor PID; returns its exit status.
kill_after_init() {
	for _ in $(seq 1 120); do
		grep -q "init reached" "$1" && break
		sleep 0.5
	done
	kill "-$3" "$2"
	wait "$2"
}

image_args "console=ttyS0 panic=-1 reboot=k quiet e2e_end=hang" "$kernel" "$work/initrd.cpio" ||
	{ fail "cannot build the EIF"; finish; }
# The last two CPUs we may use, in descending order, so vCPU i ↔ i-th listed CPU is not the
# identity that --cpu-count would give.
mapfile -t cpus < <(allowed_cpus | tail -n 2 | sort -rn)
[ "${#cpus[@]}" -eq 2 ] || { fail "need 2 CPUs, have: ${cpus[*]}"; finish; }
rm -f "$work/ready.fifo" && mkfifo "$work/ready.fifo"
"$monitor" "${IMAGE_ARGS[@]}" --memory 256 --cpu-ids "${cpus[0]},${cpus[1]}" --debug-mode \
	--ready-fd 3 >"$work/term.out" 2>"$work/term.err" 3>"$work/ready.fifo" &
pid=$!
ready=$(timeout 60 cat "$work/ready.fifo")
[ "$ready" = ready ] && pass "--ready-fd reported \"ready\"" || fail "--ready-fd gave '$ready'"
# As early as we can look (the vCPUs have just started), so pages the guest touched itself do
# not hide a RAM that was not pre-faulted.
check_guest_ram "$pid" 256
check_vcpu_pinning "$pid" "${cpus[@]}"
kill_after_init "$work/term.out" "$pid" TERM
rc=$?
if [ "$rc" -eq 14 ] && grep -q "enclave ended: terminated" "$work/term.err"; then
	pass "SIGTERM: exit 14"
else
	fail "SIGTERM: exit $rc"
	tail -n 5 "$work/term.err"
fi
rm -f "$work/ready.fifo"

# A monitor that crashes leaves no core file: guest RAM (and, with an NSM, the enclave's signing
# key) would be in it. The kernel writes cores here for any dumpable process (the control: a
# sleep killed the same way leaves one); the monitor makes itself non-dumpable.
cores=$work/cores
rm -rf "$cores" && mkdir -p "$cores"
old_pattern=$(cat /proc/sys/kernel/core_pattern)
old_suid=$(cat /proc/sys/fs/suid_dumpable)
echo "$cores/core.%p" >/proc/sys/kernel/core_pattern && echo 0 >/proc/sys/fs/suid_dumpable
(
	ulimit -c unlimited
	sleep 60 &
	kill -ABRT $!
	wait $!
) 2>/dev/null
(
	ulimit -c unlimited
	exec "$monitor" "${IMAGE_ARGS[@]}" --memory 256 --cpu-count 1 --debug-mode
) >"$work/abrt.out" 2>"$work/abrt.err" &
pid=$!
kill_after_init "$work/abrt.out" "$pid" ABRT
rc=$?
echo "$old_pattern" >/proc/sys/kernel/core_pattern
echo "$old_suid" >/proc/sys/fs/suid_dumpable
ncore=$(find "$cores" -name 'core.*' | wc -l)
if [ "$ncore" -eq 0 ]; then
	fail "the control (a sleep killed with SIGABRT) left no core in $cores: the test cannot tell"
elif [ "$rc" -eq 134 ] && [ ! -e "$cores/core.$pid" ]; then
	pass "SIGABRT to a running monitor (exit $rc): no core file (the control's is there)"
else
	fail "SIGABRT to the monitor: exit $rc, cores: $(ls "$cores")"
fi

after=$(free_hugepages)
[ "$before" = "$after" ] && pass "all $after free hugepages returned" ||
	fail "hugepages free before $before, after $after"
finish
