#!/usr/bin/env bash
# e2e-timeout: 1800
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
#      command says its error log could not be written instead of naming an empty file;
#   e. the logs disk fills while a debug-mode enclave writes its console (1 MiB tmpfs, filled
#      by dd): the enclave runs on and echoes over vsock, the log says once that console output
#      is being dropped (not once per line), and once that it is written again (with how much
#      was lost) when room comes back. Then, in the same enclave (one boot less), the kernel
#      panics with panic=0 (the kernel's default): it spins for ever, as on Nitro; the enclave
#      stays RUNNING in describe-enclaves, its console shows the whole panic, the log says
#      nothing ended, and terminate-enclave ends it; audit;
#   f. hostile guests through run-enclave (the blob of test_16): nsm-desc-addr before the boot
#      heartbeat is E36 naming what the guest did; vsock-desc-len after the heartbeat ends the
#      RUNNING enclave by itself, its log naming it. Each followed by the audit. (Racing vCPUs
#      are test_16's, on the bare monitor: the same device code, one boot less here.)
# Not here: the enclave process SIGKILLed and pool exhaustion (test_35), hugepages short for
# the bare monitor (test_12), the host-side peer closing mid-transfer (test_20).
. "$(dirname "$0")/monitor-lib.sh"

client=$top/tests/e2e/vsock_client.py
nitro=$build/src/cli/nitro-cli
kernel=$(enclave_kernel) || { fail "no enclave kernel (scripts/fetch-kernel.sh enclave)"; finish; }
fl=$work/faults
state=/tmp/cloister-faults-run # a mount of its own, so it can be made read-only
fulllogs=/tmp/cloister-faults-fulllogs
filling=/tmp/cloister-faults-filling
rm -rf "$fl" && mkdir -p "$fl" "$state" "$fulllogs" "$filling" || exit 1
export NITRO_CLI_SOCKETS_PATH=$state NITRO_CLI_LOGS_PATH=$fl/log CLOISTER_CA_DIR=$fl/ca
cleanup() {
	"$nitro" terminate-enclave --all >/dev/null 2>&1
	"$cloister" allocator --release >/dev/null 2>&1
	umount "$fulllogs" 2>/dev/null
	umount "$filling" 2>/dev/null
	umount "$state" 2>/dev/null
}
trap cleanup EXIT
mount -t tmpfs -o size=4m,mode=0755 tmpfs "$state" || { fail "cannot mount a tmpfs on $state"; finish; }

build_vsock_initrd "$fl" "$kernel" || { fail "cannot build the vsock initramfs"; finish; }
# panic=1: a panic reboots after 1 s (Nitro's EIFs say panic=30); panic=-1: at once.
make_eif "$fl/panic1.eif" "console=ttyS0 panic=1 reboot=k quiet" "$kernel" "$fl/initrd.cpio" &&
	make_eif "$fl/panic0.eif" "console=ttyS0 panic=0 reboot=k quiet" "$kernel" "$fl/initrd.cpio" &&
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
# pid. Returns run-enclave's status. MEM (default 256) MiB, CPUS (default 1) CPUs.
start() {
	local n=$1 eif=$2 rc
	shift 2
	"$nitro" run-enclave --eif-path "$eif" --memory "${MEM:-256}" --cpu-count "${CPUS:-1}" "$@" \
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

# state_of ID: the enclave's State in describe-enclaves, or "none".
state_of() {
	"$nitro" describe-enclaves | python3 -c 'import json,sys; d=[e for e in json.load(sys.stdin) if e["EnclaveID"] == sys.argv[1]]; print(d[0]["State"] if d else "none")' "$1"
}

# panic_zero: the running enclave $id ($pid; log $log, console $con) is made to panic; its EIF
# says panic=0. Linux's panic() then prints the panic, stops the other CPUs and waits in a busy
# loop with interrupts off, for ever: nothing leaves the guest that says so (no reboot, no halt
# of every vCPU), so the monitor cannot tell it from a busy enclave; on Nitro the enclave stays
# up just the same until terminated. What matters: a clear state, and a clean end on request.
panic_zero() {
	local c="kernel-panic-0" end st t0 ms rc
	out=$(timeout 60 python3 "$client" ctl "$state/$id.vsock" panic) ||
		fail "$c: control port: $out"
	end="---\[ end Kernel panic - not syncing: sysrq triggered crash \]---"
	for _ in $(seq 240); do
		grep -q -- "$end" "$con" && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.5
	done
	if grep -q -- "$end" "$con"; then
		pass "$c: the console shows the whole panic, to '$(grep -m1 -o -- "$end" "$con")'"
	else
		fail "$c: the panic did not finish on the console: $(tail -3 "$con")"
	fi
	sleep 5
	if kill -0 "$pid" 2>/dev/null; then
		pass "$c: 5 s after the panic the enclave process still runs (the kernel spins)"
	else
		fail "$c: the enclave ended by itself: $(grep -m1 'ended:' "$log")"
	fi
	st=$(state_of "$id")
	[ "$st" = RUNNING ] && pass "$c: describe-enclaves shows it RUNNING" ||
		fail "$c: describe-enclaves shows it $st, want RUNNING"
	! grep -q "ended:" "$log" && pass "$c: the log says nothing ended" ||
		fail "$c: the log says: $(grep -m1 'ended:' "$log")"
	t0=$(date +%s%N)
	"$nitro" terminate-enclave --enclave-id "$id" >"$fl/$c.tj" 2>"$fl/$c.te"
	rc=$?
	ms=$((($(date +%s%N) - t0) / 1000000))
	[ $rc -eq 0 ] && grep -q '"Terminated": true' "$fl/$c.tj" &&
		pass "$c: terminate-enclave ended the spinning enclave in $ms ms" ||
		fail "$c: terminate exit $rc after $ms ms: $(cat "$fl/$c.te")"
	grep -q "ended: terminated: terminate-enclave" "$log" &&
		pass "$c: the log says: $(grep -m1 -o 'ended: terminated.*' "$log")" ||
		fail "$c: the log does not say it was terminated: $(grep 'ended' "$log")"
}

# --- e. the logs disk fills while the enclave writes its console ------------------------------
# The console file and the enclave's log live in the logs directory. When it fills, the monitor
# drops console output (the guest's serial port never waits for the host's disk) and says so in
# the log once per episode, not once per line; the log's own last page still has room for that
# on tmpfs, and a real disk's last block usually does. The enclave must not notice.
# warned LOG: how many times the log says console output is being dropped.
warned() { grep -c "console: cannot write the enclave's console output" "$1"; }
if mount -t tmpfs -o size=1m tmpfs "$filling"; then
	export NITRO_CLI_LOGS_PATH=$filling
	c="logs-filling"
	if start "$c" "$fl/panic0.eif" --debug-mode --enclave-name "$c"; then
		log=$filling/$id.log
		con=$filling/$id.console
		out=$(timeout 60 python3 "$client" ctl "$state/$id.vsock" chatter) ||
			fail "$c: control port: $out"
		for _ in $(seq 60); do
			grep -q "chatter *5 " "$con" && break
			sleep 0.5
		done
		grep -q "chatter *5 " "$con" || fail "$c: the enclave does not chatter: $(tail -2 "$con")"
		echo "note: $c: log $(stat -c %s "$log") bytes, console $(stat -c %s "$con") bytes; filling $filling"
		dd if=/dev/zero of="$filling/filler" bs=4k 2>/dev/null
		echo "note: $c: $(df -k "$filling" | awk 'NR == 2 { print $3 " kB used, " $4 " kB free" }')"
		for _ in $(seq 60); do
			[ "$(warned "$log")" -ge 1 ] && break
			sleep 0.5
		done
		if [ "$(warned "$log")" -ge 1 ]; then
			pass "$c: the log says: $(grep -m1 -o "console: cannot write.*" "$log" | cut -c1-150)"
		else
			fail "$c: no warning in the log 30 s after the disk filled: $(tail -3 "$log")"
		fi
		sz=$(stat -c %s "$con")
		if out=$(timeout 120 python3 "$client" echo "$state/$id.vsock" 5000 1 65536); then
			pass "$c: with the disk full the enclave works: $out"
		else
			fail "$c: vsock echo with the disk full: $out"
		fi
		st=$(state_of "$id")
		[ "$st" = RUNNING ] && pass "$c: describe-enclaves shows it RUNNING" ||
			fail "$c: describe-enclaves shows it $st"
		[ "$(stat -c %s "$con")" = "$sz" ] &&
			pass "$c: the console file stays at $sz bytes while the disk is full" ||
			fail "$c: the console grew from $sz to $(stat -c %s "$con") bytes on a full disk?"
		rm -f "$filling/filler"
		for _ in $(seq 30); do
			grep -q "console: writing the enclave's console output again" "$log" && break
			sleep 0.5
		done
		if grep -q "console: writing the enclave's console output again" "$log"; then
			pass "$c: with room again the log says: $(grep -m1 -o "console: writing.*" "$log")"
		else
			fail "$c: no word in the log that the console is written again: $(tail -2 "$log")"
		fi
		[ "$(stat -c %s "$con")" -gt "$sz" ] &&
			pass "$c: the console grows again ($(tail -1 "$con" | tr -d '\r' | cut -c1-30)…)" ||
			fail "$c: the console stays at $sz bytes after room came back"
		n=$(warned "$log")
		[ "$n" -eq 1 ] && pass "$c: one warning for the whole episode" ||
			fail "$c: $n warnings for one episode, want 1"
		panic_zero
	else
		fail "$c: run-enclave exit $?: $(cat "$fl/$c.err")"
	fi
	audit_released "logs-filling, kernel-panic-0"
	export NITRO_CLI_LOGS_PATH=$fl/log
	umount "$filling"
else
	fail "cannot mount a 1 MiB tmpfs on $filling"
fi

# --- f. hostile guests through run-enclave -----------------------------------------------------
# test_16's blob (tests/e2e/hostile-guest.c) in an EIF, run by run-enclave in debug mode, 64 MiB.
blob=$build/tests/e2e/hostile-guest.bin
if [ ! -f "$blob" ]; then
	echo "note: $blob is not built (a sanitizer build?): no hostile guests through run-enclave"
else
	make_blob_kernel_file "$fl/hostile.bzImage" "$blob"
	(cd "$fl" && echo hostile.bzImage | cpio -o -H newc --quiet >"$fl/hostile.cpio")
	# hostile_heartbeat: the guest sends the boot heartbeat first, so run-enclave returns.
	for m in nsm-desc-addr "vsock-desc-len hostile_heartbeat"; do
		make_eif "$fl/h-${m%% *}.eif" "console=ttyS0 hostile=$m" "$fl/hostile.bzImage" \
			"$fl/hostile.cpio" || fail "cannot build the EIF for hostile=$m"
	done
	logs=$NITRO_CLI_LOGS_PATH

	# nsm-desc-addr attacks before any heartbeat: run-enclave fails with E36 and says why.
	c="hostile-nsm-desc-addr"
	what="guest-violation: virtio virtio-nsm: queue 0: descriptor buffer lies outside guest RAM: descriptor 0 (addr 0x700000000"
	MEM=64 start "$c" "$fl/h-nsm-desc-addr.eif" --debug-mode --enclave-name "$c"
	rc=$?
	if [ $rc -eq 36 ] && grep -q "\[ E36 \]" "$fl/$c.err" && grep -qF "$what" "$fl/$c.err"; then
		pass "$c: run-enclave E36: $(grep -o 'the enclave did not boot.*' "$fl/$c.err" | cut -c1-140)…"
	else
		fail "$c: run-enclave exit $rc (want 36 naming the violation): $(cat "$fl/$c.err")"
	fi
	elog=$(grep -l "($c)" "$logs"/i-*.log 2>/dev/null | head -1)
	if [ -n "$elog" ] && grep -qF "ended: $what" "$elog"; then
		pass "$c: its log $(basename "$elog") names it too"
	else
		fail "$c: no enclave log naming the violation (${elog:-none found})"
	fi
	audit_released "$c"

	# vsock-desc-len after the heartbeat: run-enclave succeeds, then the enclave ends itself.
	c="hostile-vsock-desc-len"
	what="guest-violation: virtio vsock: tx queue 1: descriptor buffer lies outside guest RAM: descriptor 0 (addr"
	if MEM=64 start "$c" "$fl/h-vsock-desc-len.eif" --debug-mode --enclave-name "$c"; then
		pass "$c: run-enclave: booted (the guest sent the heartbeat), enclave $id"
		if gone "$pid" 30; then
			pass "$c: the enclave process ended by itself"
		else
			fail "$c: enclave process $pid still runs 30 s after the attack"
		fi
		grep -qF "ended: $what" "$logs/$id.log" && grep -q "len 0xffffffff" "$logs/$id.log" &&
			pass "$c: its log says: $(grep -o 'ended: .*' "$logs/$id.log" | cut -c1-150)…" ||
			fail "$c: the log does not name the violation: $(grep 'ended' "$logs/$id.log")"
		grep -q "hostile: boot heartbeat echoed" "$logs/$id.console" ||
			fail "$c: the console lacks the guest's heartbeat line"
		[ "$(state_of "$id")" = none ] && pass "$c: describe-enclaves no longer lists it" ||
			fail "$c: describe-enclaves still lists it"
	else
		fail "$c: run-enclave exit $?: $(cat "$fl/$c.err")"
	fi
	audit_released "$c"
fi

# Hugepages exhausted: test_35 (pool budget, E27, nothing leaked) and test_12 (the monitor).
finish
