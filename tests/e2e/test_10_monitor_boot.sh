#!/usr/bin/env bash
# e2e-timeout: 600
# The Debian cloud kernel, from an EIF, reaches the test init with 1 and with 2 vCPUs and powers
# off cleanly (exit status 0): unpacked by the monitor (the first boot fills the kernel cache,
# the second maps it) and, with the cache off, through the bzImage's own decompressor. The boot
# timeline (--timeline) saw each step in order, including the init's boot-timer write, and no
# guest code ran before the monitor's main thread was under its allow-list.
. "$(dirname "$0")/monitor-lib.sh"

kernel=$(enclave_kernel) || { fail "no enclave kernel (scripts/fetch-kernel.sh enclave)"; finish; }
build_initrd || { fail "cannot build the test initramfs"; finish; }
ensure_hugepages 512
cmdline="console=ttyS0 panic=-1 reboot=k quiet"
image_args "$cmdline" "$kernel" "$work/initrd.cpio" || { fail "cannot build the EIF"; finish; }

cache=$work/kernel-cache
rm -rf "$cache"
for c in "1 $cache unpacked now" "2 $cache unpacked from the cache" \
	"1 off through its decompressor"; do
	read -r n dir how <<<"$c"
	CLOISTER_KERNEL_CACHE=$dir run_monitor "$work/boot$n.out" "$work/boot$n.err" 120 \
		"${IMAGE_ARGS[@]}" --memory 256 --cpu-count "$n" --debug-mode --log-level debug \
		--timeline "$work/timeline$n.json"
	rc=$?
	if [ "$rc" -eq 0 ] && grep -q "init reached, $n cpus online" "$work/boot$n.out" &&
		grep -q "enclave ended: poweroff" "$work/boot$n.err"; then
		pass "$n vCPU(s), kernel $how: init reached with $n CPUs online, powered off, exit 0"
	else
		fail "$n vCPU(s), kernel $how: exit $rc"
		tail -n 20 "$work/boot$n.out" "$work/boot$n.err"
	fi
	case $how in
	"unpacked now") want="kernel unpacked now" ;;
	"unpacked from the cache") want="kernel unpacked from the cache" ;;
	*) want="booting the bzImage through its decompressor: the kernel cache is off" ;;
	esac
	if grep -q "$want" "$work/boot$n.err"; then
		pass "$n vCPU(s): the monitor says: $want"
	else
		fail "$n vCPU(s): no '$want' in the monitor's log"
		grep -E "kernel|bzImage" "$work/boot$n.err" | head -5
	fi
	# Set-up, the main thread under its allow-list, first guest entry, the kernel's first
	# UART access and the init's boot-timer write, each seen and in that order (no guest
	# code before the main thread is sealed); no heartbeat (this init has no vsock device).
	if out=$(python3 - "$work/timeline$n.json" <<'PY' 2>&1
import json, sys
t = json.load(open(sys.argv[1]))
steps = ["ready", "sealed", "vcpu_run", "uart", "init"]
missing = [s for s in steps if t.get(s) is None]
assert not missing, f"not recorded: {missing} in {t}"
times = [t[s] for s in steps]
assert times == sorted(times) and times[0] > 0, f"out of order: {t}"
assert t["heartbeat"] is None, f"a heartbeat without vsock: {t}"
print(f"set-up {t['vcpu_run']:.0f} ms, kernel {t['init'] - t['vcpu_run']:.0f} ms")
PY
	); then
		pass "$n vCPU(s): boot timeline in order: $out"
	else
		fail "$n vCPU(s): boot timeline: $out"
	fi
done
finish
