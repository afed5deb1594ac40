#!/usr/bin/env bash
# vsock end to end: the boot heartbeat; an echo server in the enclave driven from the parent
# over the vsock Unix socket and over TCP forwarding with hashed multi-MiB payloads both ways
# and 16 concurrent connections; a closed port refused; the parent side killed mid-transfer
# while the others carry on; an enclave connection to a parent port; a missing heartbeat ends
# the enclave with the boot-failure status.
#
# Known issue (docs/parent-instance.md §6): under this traffic the enclave guest has
# triple-faulted about once in ten runs inside the parent instance, cause not yet found. When a
# failed run's monitor reports exactly that, the test says so and runs once more; a second
# failure of any kind fails it. Anything else fails at once.
# e2e-timeout: 600
. "$(dirname "$0")/monitor-lib.sh"

client=$top/tests/e2e/vsock_client.py
kernel=$(enclave_kernel) || { fail "no enclave kernel (scripts/fetch-kernel.sh enclave)"; finish; }

# The initramfs: vsock-init plus the vsock modules of exactly this kernel (the reference
# launch's packer, tests/e2e/lib/microvm.sh).
build_vsock_initrd() {
	bash "$top/tests/e2e/lib/microvm.sh" initramfs --init "$build/tests/e2e/vsock-init" \
		--out "$work/vsock-initrd.cpio" --vsock-modules "$(dirname "$(dirname "$kernel")")"
}
build_vsock_initrd || { fail "cannot build the vsock initramfs"; finish; }
ensure_hugepages 512

cid=16
vs=$work/vsock
rm -rf "$vs" && mkdir -p "$vs"
[ -n "${E2E_VSOCK_RETRY:-}" ] || rm -f "$work/vsock-triple-fault"
# The sockets live on a local filesystem: inside the parent instance the work tree is a 9p
# share, and Unix sockets on a network filesystem are nothing a user would rely on (the default
# is /run/cloister). The logs stay in $vs, where a failed run can still be read.
sockdir=$(mktemp -d /tmp/cloister-e2e-vsock.XXXXXX)
trap 'rm -rf "$sockdir"' EXIT
uds=$sockdir/enclave.vsock

# start_enclave CMDLINE: the monitor in the background; sets $mon_pid. Heartbeat expected.
start_enclave() {
	image_args "$1" "$kernel" "$work/vsock-initrd.cpio" || return 1
	rm -f "$vs/booted" "$vs/console.log"
	"$monitor" "${IMAGE_ARGS[@]}" --memory 256 --cpu-count 1 --cid $cid --vsock-uds "$uds" \
		--heartbeat-timeout "${2:-120}" --booted-fd 3 --debug-mode --console "$vs/console.log" \
		--timeline "$vs/timeline.json" 3>"$vs/booted" >"$vs/monitor.out" 2>"$vs/monitor.err" &
	mon_pid=$!
}

# diag: after a failure, say whether the monitor still runs and show what it and the guest said
# (CI keeps only this output).
diag() {
	if kill -0 "$mon_pid" 2>/dev/null; then
		echo "  monitor (pid $mon_pid) still running"
	else
		echo "  monitor (pid $mon_pid) has ended"
	fi
	grep -q "enclave ended: triple-fault" "$vs/monitor.err" && : >"$work/vsock-triple-fault"
	echo "  --- monitor stderr"
	grep -v '^cloister: info' "$vs/monitor.err" | tail -40 | sed 's/^/  /'
	echo "  --- console tail"
	tail -15 "$vs/console.log" | sed 's/^/  /'
}

# wait_booted SECONDS: until the monitor wrote "booted" (or died).
wait_booted() {
	for _ in $(seq $(($1 * 10))); do
		grep -q booted "$vs/booted" 2>/dev/null && return 0
		kill -0 "$mon_pid" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# --- the enclave says hello to the parent's port 6000 after its heartbeat
python3 "$client" listen "${uds}_6000" "$vs/hello.txt" &
listener=$!
for _ in $(seq 300); do [ -S "${uds}_6000" ] && break; sleep 0.1; done
start_enclave "console=ttyS0 panic=-1 reboot=k quiet" || { fail "cannot build the EIF"; finish; }
if wait_booted 120; then
	pass "heartbeat: the monitor saw 0xB7 on port 9000 and reported the enclave booted"
else
	fail "no heartbeat reported"
	diag
fi
if timeout 60 bash -c "while ! grep -q serving '$vs/console.log'; do sleep 0.2; done"; then
	pass "enclave init is serving"
else
	fail "enclave init never served"
	diag
fi
wait "$listener" 2>/dev/null
if grep -q "hello from enclave cid $cid" "$vs/hello.txt" 2>/dev/null; then
	pass "enclave -> parent: CID 3 port 6000 reached ${uds}_6000"
else
	fail "enclave -> parent: nothing arrived at ${uds}_6000"
fi

# --- parent -> enclave over the Unix socket: 16 concurrent 4 MiB echoes
if out=$(timeout 300 python3 "$client" echo "$uds" 5000 16 $((2 << 20)) 2>"$vs/client.err"); then
	pass "$out"
else
	fail "$out"
	tail -5 "$vs/client.err"
	diag
fi

if out=$(timeout 60 python3 "$client" refused "$uds" 5999 2>"$vs/client.err"); then
	pass "$out"
else
	fail "$out"
	tail -5 "$vs/client.err"
fi

# --- the parent side is killed mid-transfer: the others carry on, the monitor stays up
python3 "$client" echo "$uds" 5000 1 $((256 << 20)) >/dev/null 2>&1 &
victim=$!
sleep 2
kill -9 "$victim" 2>/dev/null
wait "$victim" 2>/dev/null
if out=$(timeout 300 python3 "$client" echo "$uds" 5000 4 $((2 << 20))) &&
	kill -0 "$mon_pid" 2>/dev/null; then
	pass "after a peer died mid-transfer: $out"
else
	fail "after a peer died mid-transfer: $out"
	diag
fi

# --- TCP forwarding both ways through cloister vsock-forward
port=$((20000 + RANDOM % 20000))
"$cloister" vsock-forward --uds "$uds" --tcp-listen "127.0.0.1:$port" --vsock-port 5000 \
	2>"$vs/forward.err" &
fwd=$!
sleep 0.5
if out=$(timeout 300 python3 "$client" tcp 127.0.0.1 "$port" $((8 << 20))); then
	pass "TCP 127.0.0.1:$port -> enclave port 5000: $out"
else
	fail "TCP forwarding: $out"
	cat "$vs/forward.err"
fi
kill "$fwd" 2>/dev/null
wait "$fwd" 2>/dev/null

# --- power off from inside: the monitor exits 0 and removes its socket
python3 "$client" quit "$uds" >/dev/null
for _ in $(seq 600); do kill -0 "$mon_pid" 2>/dev/null || break; sleep 0.1; done
wait "$mon_pid"
rc=$?
if [ "$rc" -eq 0 ] && [ ! -e "$uds" ]; then
	pass "enclave powered off: monitor exit 0, vsock socket removed"
else
	fail "power off: monitor exit $rc, socket $( [ -e "$uds" ] && echo left behind || echo removed)"
	diag
fi
# The boot timeline: vsock-init's boot-timer write, then the virtio-mmio driver probing (while
# the modules load), then its "modules loaded" write, then the heartbeat.
if out=$(python3 - "$vs/timeline.json" <<'PY' 2>&1
import json, sys
t = json.load(open(sys.argv[1]))
steps = ["ready", "vcpu_run", "init", "virtio", "devices", "heartbeat"]
missing = [s for s in steps if t.get(s) is None]
assert not missing, f"not recorded: {missing} in {t}"
times = [t[s] for s in steps]
assert times == sorted(times), f"out of order: {t}"
print(f"kernel {t['init'] - t['vcpu_run']:.0f} ms, modules {t['devices'] - t['init']:.0f} ms, "
      f"heartbeat at {t['heartbeat']:.0f} ms")
PY
); then
	pass "boot timeline in order: $out"
else
	fail "boot timeline: $out"
fi

# --- no heartbeat: the monitor ends the enclave with the boot-failure status (16)
start_enclave "console=ttyS0 panic=-1 reboot=k quiet e2e_heartbeat=skip" 8 ||
	{ fail "cannot build the EIF"; finish; }
wait "$mon_pid"
rc=$?
if [ "$rc" -eq 16 ] && grep -q "no boot heartbeat" "$vs/monitor.err" && [ ! -s "$vs/booted" ]; then
	pass "missing heartbeat: enclave ended with status 16 after the timeout"
else
	fail "missing heartbeat: monitor exit $rc"
	tail -5 "$vs/monitor.err"
fi
if [ "$failures" -gt 0 ] && [ -e "$work/vsock-triple-fault" ] && [ -z "${E2E_VSOCK_RETRY:-}" ]; then
	echo "KNOWN ISSUE: the enclave guest triple-faulted under load (docs/parent-instance.md §6);" \
		"running test_20 once more"
	rm -f "$work/vsock-triple-fault"
	rm -rf "$sockdir" # exec skips the EXIT trap
	E2E_VSOCK_RETRY=1 exec bash "$0"
fi
finish
