#!/usr/bin/env bash
# e2e-timeout: 1200
# Faults through the real nitro-cli, each followed by an audit (monitor-lib.sh audit_released:
# hugepages, grants, sockets, enclave processes, describe-enclaves, the pool record):
#   a. the enclave kernel panics (sysrq c, panic=1 as Nitro's panic=30): the enclave ends by
#      itself, describe-enclaves drops it, its log says it ended by a reboot and why that
#      happens, its console shows the panic;
#   b. init (PID 1) exits (panic=-1): the same end through "Attempted to kill init!";
#   c. the sockets/state directory on a read-only mount: run-enclave refuses with E19 naming
#      the directory and the fix, before starting anything; describe-enclaves still works;
#   d. the logs disk full (a 64 KiB tmpfs, filled): logs are best effort, so the enclave starts
#      and works (vsock echo), run-enclave warns that its log is lost and where; a failing
#      command says its error log could not be written instead of naming an empty file.
# Not here: the enclave process SIGKILLed and pool exhaustion (test_35), hugepages short for
# the bare monitor (test_12), the host-side peer closing mid-transfer (test_20).
. "$(dirname "$0")/monitor-lib.sh"

client=$top/tests/e2e/vsock_client.py
nitro=$build/src/cli/nitro-cli
kernel=$(enclave_kernel) || { fail "no enclave kernel (scripts/fetch-kernel.sh enclave)"; finish; }
fl=$work/faults
state=/tmp/cloister-faults-run # a mount of its own, so it can be made read-only
fulllogs=/tmp/cloister-faults-fulllogs
rm -rf "$fl" && mkdir -p "$fl" "$state" "$fulllogs" || exit 1
export NITRO_CLI_SOCKETS_PATH=$state NITRO_CLI_LOGS_PATH=$fl/log CLOISTER_CA_DIR=$fl/ca
cleanup() {
	"$nitro" terminate-enclave --all >/dev/null 2>&1
	"$cloister" allocator --release >/dev/null 2>&1
	umount "$fulllogs" 2>/dev/null
	umount "$state" 2>/dev/null
}
trap cleanup EXIT
mount -t tmpfs -o size=4m,mode=0755 tmpfs "$state" || { fail "cannot mount a tmpfs on $state"; finish; }

build_vsock_initrd "$fl" "$kernel" || { fail "cannot build the vsock initramfs"; finish; }
# panic=1: a panic reboots after 1 s (Nitro's EIFs say panic=30); panic=-1: at once.
make_eif "$fl/panic1.eif" "console=ttyS0 panic=1 reboot=k quiet" "$kernel" "$fl/initrd.cpio" &&
	make_eif "$fl/app.eif" "console=ttyS0 panic=-1 reboot=k quiet" "$kernel" "$fl/initrd.cpio" ||
	{ fail "cannot build the EIFs"; finish; }

json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }

ncpu=$(nproc)
[ "$ncpu" -ge 2 ] || { fail "the parent instance has $ncpu CPU; need 2 or more"; finish; }
printf -- '---\nmemory_mib: 512\ncpu_pool: 1-%d\n' $((ncpu - 1)) >"$fl/allocator.yaml"
"$cloister" allocator --config "$fl/allocator.yaml" >"$fl/alloc.out" 2>&1 ||
	{ fail "allocator failed: $(cat "$fl/alloc.out")"; finish; }
audit_snapshot
echo "note: snapshot: $AUDIT_HP free hugepages, pool $(grep '^cpus=' "$state/pool.conf")"

# start NAME EIF ARGS...: run-enclave, JSON in $fl/NAME.json, stderr in $fl/NAME.err; sets id,
# pid. Returns run-enclave's status.
start() {
	local n=$1 eif=$2 rc
	shift 2
	"$nitro" run-enclave --eif-path "$eif" --memory 256 --cpu-count 1 "$@" \
		>"$fl/$n.json" 2>"$fl/$n.err"
	rc=$?
	id="" pid=""
	if [ $rc -eq 0 ]; then
		id=$(json "$fl/$n.json" 'd["EnclaveID"]')
		pid=$(json "$fl/$n.json" 'd["ProcessID"]')
	fi
	return $rc
}

# gone PID SECONDS: wait until PID has exited.
gone() {
	for _ in $(seq $(($2 * 2))); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.5
	done
	return 1
}

# crash CASE WORD CONSOLE_PATTERN EIF: start a debug-mode enclave, send WORD to its init's
# control port, expect the enclave to end by itself through a guest reboot.
crash() {
	local c=$1 word=$2 pat=$3 eif=$4 log con
	if ! start "$c" "$eif" --debug-mode --enclave-name "$c"; then
		fail "$c: run-enclave exit $?: $(tail -3 "$fl/$c.err")"
		return
	fi
	pass "$c: enclave $id running (enclave process $pid)"
	log=$NITRO_CLI_LOGS_PATH/$id.log
	con=$NITRO_CLI_LOGS_PATH/$id.console
	out=$(timeout 60 python3 "$client" ctl "$state/$id.vsock" "$word") ||
		fail "$c: control port: $out"
	if gone "$pid" 240; then
		pass "$c: the enclave process ended by itself"
	else
		fail "$c: enclave process $pid still running 240 s after '$word'"
		tail -5 "$log" "$con"
		"$nitro" terminate-enclave --enclave-id "$id" >/dev/null 2>&1
	fi
	if grep -q "ended: reboot" "$log" && grep -q "kernel panicked" "$log"; then
		pass "$c: the log says how it ended: $(grep -m1 -o 'ended: reboot.*' "$log" | cut -c1-60); $(grep -m1 -o 'a guest reboot ends.*' "$log" | cut -c1-60)…"
	else
		fail "$c: $log does not say it ended by a reboot: $(grep -m2 'ended\|panick' "$log")"
	fi
	if grep -q "$pat" "$con"; then
		pass "$c: the console shows '$(grep -m1 -o "$pat.*" "$con" | tr -d '\r' | cut -c1-80)'"
	else
		fail "$c: no '$pat' on the console: $(tail -3 "$con")"
	fi
	audit_released "$c"
}

# --- a. kernel panic (sysrq c; panic=1) ------------------------------------------------------
crash "kernel-panic" panic "Kernel panic - not syncing: sysrq triggered crash" "$fl/panic1.eif"

# --- b. init exits (panic=-1) ----------------------------------------------------------------
crash "init-exits" exit "Kernel panic - not syncing: Attempted to kill init" "$fl/app.eif"

# --- c. the sockets/state directory read-only --------------------------------------------------
if mount -o remount,ro "$state"; then
	start ro "$fl/app.eif"
	rc=$?
	if [ $rc -eq 19 ] && grep -q "\[ E19 \]" "$fl/ro.err" && grep -q "$state" "$fl/ro.err" &&
		grep -q "remount it read-write" "$fl/ro.err" && [ ! -s "$fl/ro.json" ]; then
		pass "read-only state dir: E19, $(grep -o 'the state directory.*read-write' "$fl/ro.err" | cut -c1-120)"
	else
		fail "read-only state dir: exit $rc (want 19): $(head -2 "$fl/ro.err")"
	fi
	grep -q "Start allocating memory" "$fl/ro.err" &&
		fail "read-only state dir: an enclave process was started before the refusal" ||
		pass "read-only state dir: refused before any enclave process started"
	d=$("$nitro" describe-enclaves 2>&1 | tr -d ' \n')
	[ "$d" = "[]" ] && pass "read-only state dir: describe-enclaves still answers []" ||
		fail "read-only state dir: describe-enclaves: $d"
	mount -o remount,rw "$state" || fail "cannot make $state writable again"
	audit_released "read-only state dir"
else
	fail "cannot remount $state read-only"
fi

# --- d. the logs disk full ---------------------------------------------------------------------
if mount -t tmpfs -o size=64k tmpfs "$fulllogs"; then
	dd if=/dev/zero of="$fulllogs/filler" bs=4k 2>/dev/null
	echo "note: logs disk: $(df -k "$fulllogs" | awk 'NR == 2 { print $3 " kB used, " $4 " kB free" }')"
	export NITRO_CLI_LOGS_PATH=$fulllogs
	if start full "$fl/app.eif" --debug-mode --enclave-name full; then
		pass "logs disk full: run-enclave starts the enclave ($id)"
		if grep -q "Warning: cannot write the enclave's log in $fulllogs: No space left on device" \
			"$fl/full.err"; then
			pass "logs disk full: run-enclave warns: $(grep -m1 -o 'Warning.*' "$fl/full.err" | cut -c1-110)…"
		else
			fail "logs disk full: no warning on run-enclave's stderr: $(cat "$fl/full.err")"
		fi
		[ "$("$nitro" describe-enclaves | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d[0]["State"] if d else "none")')" = RUNNING ] &&
			pass "logs disk full: describe-enclaves shows it RUNNING" ||
			fail "logs disk full: describe-enclaves does not show it running"
		if out=$(timeout 120 python3 "$client" echo "$state/$id.vsock" 5000 1 65536); then
			pass "logs disk full: the enclave works: $out"
		else
			fail "logs disk full: vsock echo: $out"
		fi
		"$nitro" terminate-enclave --enclave-id "$id" >"$fl/tf.json" 2>"$fl/tf.err"
		rc=$?
		[ $rc -eq 0 ] && grep -q '"Terminated": true' "$fl/tf.json" &&
			pass "logs disk full: terminate-enclave" ||
			fail "logs disk full: terminate exit $rc: $(cat "$fl/tf.err")"
	else
		fail "logs disk full: run-enclave exit $?: $(cat "$fl/full.err")"
	fi
	audit_released "logs disk full"
	# A failing command: E26 before anything starts; its error log cannot be written.
	"$nitro" run-enclave --eif-path "$fl/app.eif" --memory 2 --cpu-count 1 >/dev/null 2>"$fl/e26.err"
	rc=$?
	if [ $rc -eq 26 ] && grep -q "the error log could not be written to $fulllogs: No space left" "$fl/e26.err" &&
		! ls "$fulllogs"/err*.log >/dev/null 2>&1; then
		pass "logs disk full: E26 says its error log could not be written (no empty err*.log)"
	else
		fail "logs disk full: E26 exit $rc, err logs: $(ls "$fulllogs"): $(tail -1 "$fl/e26.err")"
	fi
	export NITRO_CLI_LOGS_PATH=$fl/log
	umount "$fulllogs"
else
	fail "cannot mount a 64 KiB tmpfs on $fulllogs"
fi

# e. hugepages exhausted: test_35 (pool budget, E27, nothing leaked) and test_12 (the monitor).
finish
