#!/usr/bin/env bash
# e2e-timeout: 600
# Malicious guests (issue 10): a freestanding "kernel" (tests/e2e/hostile-guest.c, built by
# meson as build/tests/e2e/hostile-guest.bin) drives the NSM and vsock virtio-mmio devices the
# way a broken or hostile driver would; `hostile=MODE` on its command line picks the attack.
# For each one the monitor must either end only that enclave with exit status 13
# (guest-violation) and a log line naming what the guest did, or shrug the junk off, keep
# serving, and let the guest power off (status 0) after it has checked the device's answers.
# Never a crash: no signal death, no sanitizer or seccomp report, no status 1/15; every
# hugepage is free again afterwards.
#
#   ring-outside-ram  NSM descriptor table at 0x7_ffff_f000           13, "outside guest RAM"
#   nsm-desc-loop     NSM chain 0 -> 1 -> 0 (F_NEXT back to the head)  13, "chain too long"
#   nsm-desc-addr     NSM buffer at 0x7_0000_0000                      13, names the address
#   nsm-desc-len      NSM buffer of 0xffffffff bytes                   13, names the length
#   nsm-avail-ahead   NSM avail->idx 0x8000 ahead (queue size 2)       13, "ran ahead"
#   nsm-4097          an NSM request of 4097 bytes                     0, InputTooLarge answered
#   vsock-desc-addr   vsock TX buffer at 0x7_0000_0000                 13, names the address
#   vsock-desc-len    vsock TX buffer of 0xffffffff bytes              13, names the length
#   vsock-junk        wrong type/op/src/dst CID, short, over-long      0, 4 resets, heartbeat
#   vsock-rx-small    16-byte RX buffers, then a host client connects  13 from the main thread
#
# Racing vCPUs (--cpu-count 2; the blob starts vCPU 1 itself through its local APIC, INIT and a
# start-up IPI, as an OS does), no lock between the two:
#   nsm-race          vCPU 1 keeps the NSM ring full and rewrites the request while both kick:
#                     the device serves (1000 answers), then SIGTERM ends it: 14, hugepages back
#   vsock-race        the same on vsock TX (256 entries of ~60 KiB spoofed-source packets;
#                     junk: 4 warnings, then quiet): 2000 packets taken, then SIGTERM must
#                     still end it (14) promptly; the monitor's main thread, which drains TX,
#                     must not be held by the guest
#   vsock-desc-flip   an 8-descriptor TX chain offered again and again while vCPU 1 flips its
#                     last descriptor into a loop: 13, "chain too long", descriptor 7 next 0
. "$(dirname "$0")/monitor-lib.sh"

blob=$build/tests/e2e/hostile-guest.bin
[ -f "$blob" ] || { echo "build/tests/e2e/hostile-guest.bin is not built (a sanitizer build?)"; exit 77; }
have_build_eif || { echo "cloister build-eif is not available"; exit 77; }
ensure_hugepages 128

hw=$work/hostile
rm -rf "$hw" && mkdir -p "$hw/ca"
make_blob_kernel_file "$hw/hostile.bzImage" "$blob"
# The blob needs no initramfs; an EIF carries at least one ramdisk.
(cd "$hw" && echo hostile.bzImage | cpio -o -H newc --quiet >"$hw/initrd.cpio") ||
	{ fail "cannot build the initramfs"; finish; }
sockdir=$(mktemp -d /tmp/cloister-e2e-hostile.XXXXXX)
trap 'rm -rf "$sockdir"' EXIT

# Every case: a 64 MiB enclave on one CPU (or $2) with an NSM (virtio-mmio slot 0) and vsock
# (slot 1), its console kept so the guest's own verdict can be read.
monitor_args() {
	echo --eif "$hw/$1.eif" --memory 64 --cpu-count "${2:-1}" \
		--enclave-id i-0e2e0e2e0e2e0e2e0-enc0000000000000016 --ca-dir "$hw/ca" \
		--cid 16 --debug-mode --console "$hw/$1.console"
}

# check MODE RC WANT_RC STDERR_REGEX [CONSOLE_REGEX]: the verdict on one finished case.
check() {
	local mode=$1 rc=$2 want=$3 re=$4 con=${5:-} err=$hw/$1.err bad=""
	[ "$rc" -eq "$want" ] || bad+=" exit $rc, want $want;"
	grep -Eq -- "$re" "$err" || bad+=" stderr lacks /$re/;"
	[ -z "$con" ] || grep -Eq -- "$con" "$hw/$mode.console" 2>/dev/null ||
		bad+=" console lacks /$con/;"
	! grep -Eq "AddressSanitizer|runtime error:|seccomp:" "$err" || bad+=" sanitizer/seccomp report;"
	[ "$(free_hugepages)" -eq "$free0" ] || bad+=" hugepages free $(free_hugepages), were $free0;"
	if [ -z "$bad" ]; then
		pass "$mode: exit $rc: $(grep -E -- "$re" "$err" | head -1)"
		[ -z "$con" ] || pass "$mode: the guest says: $(grep -E -- "$con" "$hw/$mode.console")"
	else
		fail "$mode:$bad"
		sed 's/^/    stderr: /' "$err"
		[ -f "$hw/$mode.console" ] && sed 's/^/    console: /' "$hw/$mode.console"
	fi
}

# run_case MODE WANT_RC STDERR_REGEX [CONSOLE_REGEX]: boot the blob in MODE and judge it.
# CPUS (default 1) vCPUs.
run_case() {
	local mode=$1 rc extra=()
	shift
	# vsock-junk ends with the Nitro heartbeat: the monitor answers port 9000 only when told to.
	[ "$mode" != vsock-junk ] || extra=(--heartbeat-timeout 30)
	make_eif "$hw/$mode.eif" "console=ttyS0 hostile=$mode" "$hw/hostile.bzImage" \
		"$hw/initrd.cpio" || { fail "$mode: cannot build the EIF"; return; }
	# shellcheck disable=SC2046
	run_monitor "$hw/$mode.out" "$hw/$mode.err" 60 $(monitor_args "$mode" "${CPUS:-1}") \
		"${extra[@]}"
	rc=$?
	check "$mode" "$rc" "$@"
}

free0=$(free_hugepages)
ended="enclave ended: guest-violation: "
run_case ring-outside-ram 13 "${ended}virtio virtio-nsm: queue 0 .*outside guest RAM"
run_case nsm-desc-loop 13 "${ended}virtio virtio-nsm: .*descriptor chain too long \(loop"
run_case nsm-desc-addr 13 "${ended}virtio virtio-nsm: .*outside guest RAM.*0x700000000"
run_case nsm-desc-len 13 "${ended}virtio virtio-nsm: .*outside guest RAM.*0xffffffff"
run_case nsm-avail-ahead 13 "${ended}virtio virtio-nsm: .*available index ran ahead"
run_case nsm-4097 0 "enclave ended: poweroff" \
	"nsm answered a 4097-byte request with InputTooLarge"
run_case vsock-desc-addr 13 "${ended}virtio vsock: .*tx.*outside guest RAM.*0x700000000"
run_case vsock-desc-len 13 "${ended}virtio vsock: .*tx.*outside guest RAM.*0xffffffff"
run_case vsock-junk 0 "vsock: dropped a packet from the guest: type 2 op 1 to CID 3 port 5000" \
	"vsock survived 7 junk packets: 4 resets back, heartbeat echoed"
grep -q "enclave booted: .*heartbeat after" "$hw/vsock-junk.err" &&
	pass "vsock-junk: the monitor saw the heartbeat after the junk" ||
	fail "vsock-junk: no heartbeat reported after the junk"
# Six of the seven are junk; the engine names the first four at warning level and the rest at
# debug level only (a flood must not flood the log); the seventh is an ordinary stray packet.
n=$(grep -c "vsock: dropped a packet from the guest" "$hw/vsock-junk.err")
[ "$n" -eq 4 ] && pass "vsock-junk: 4 junk packets named in the log" ||
	fail "vsock-junk: $n junk packets named in the log, want 4"

# vsock-rx-small: the guest's fault shows only when the host has something to deliver, on the
# monitor's main thread. A host client connects; the monitor must end the enclave then, not
# leave it running with a failed device.
mode=vsock-rx-small
python3 -c 'import socket' # the first start of a host binary inside reads it over 9p: slow
make_eif "$hw/$mode.eif" "console=ttyS0 hostile=$mode" "$hw/hostile.bzImage" "$hw/initrd.cpio"
# shellcheck disable=SC2046
timeout -k 5 120 "$monitor" $(monitor_args "$mode") --vsock-uds "$sockdir/enclave.vsock" \
	>"$hw/$mode.out" 2>"$hw/$mode.err" &
mon=$!
for _ in $(seq 1 200); do
	grep -q "rx buffers of 16 bytes posted" "$hw/$mode.console" 2>/dev/null &&
		[ -S "$sockdir/enclave.vsock" ] && break
	sleep 0.1
done
[ -S "$sockdir/enclave.vsock" ] || { echo "note: no socket in $sockdir:"; ls -la "$sockdir"; }
python3 - "$sockdir/enclave.vsock" <<'EOF' || echo "note: the host client: $?"
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(20)
s.connect(sys.argv[1])
s.sendall(b"CONNECT 5000\n")
try:
    s.recv(1)  # ends when the monitor closes the socket
except OSError:
    pass
EOF
wait "$mon"
check "$mode" $? 13 "${ended}virtio vsock: .*rx buffer of 16 bytes cannot hold a packet header"

# ---- racing vCPUs ----------------------------------------------------------------------------
# race_then_term MODE CONSOLE_LINE: boot MODE on 2 vCPUs, wait until the guest says CONSOLE_LINE
# (the device served it while both vCPUs hammered), let them hammer 2 s more, then SIGTERM: the
# monitor must end the enclave within 20 s with exit 14, as it does an idle one. A guest that
# triple-faults on its own before the SIGTERM is the parent instance's known nested-emulation
# fault (docs/parent-instance.md §6, also seen with Linux guests under load): said, and the case
# is run once more; a second one fails.
race_then_term() {
	local mode=$1 line=$2 retried=${3:-} mon rc t0 ms start=$SECONDS
	make_eif "$hw/$mode.eif" "console=ttyS0 hostile=$mode" "$hw/hostile.bzImage" \
		"$hw/initrd.cpio" || { fail "$mode: cannot build the EIF"; return; }
	# shellcheck disable=SC2046
	"$monitor" $(monitor_args "$mode" 2) >"$hw/$mode.out" 2>"$hw/$mode.err" &
	mon=$!
	for _ in $(seq 1 600); do
		grep -q "$line" "$hw/$mode.console" 2>/dev/null && break
		kill -0 "$mon" 2>/dev/null || break
		sleep 0.1
	done
	if ! grep -q "$line" "$hw/$mode.console" 2>/dev/null; then
		fail "$mode: the guest never said '$line'"
		sed 's/^/    console: /' "$hw/$mode.console" 2>/dev/null
		sed 's/^/    stderr: /' "$hw/$mode.err"
		kill -KILL "$mon" 2>/dev/null
		wait "$mon" 2>/dev/null
		return
	fi
	sleep 2
	if ! kill -0 "$mon" 2>/dev/null && grep -q "enclave ended: triple-fault" "$hw/$mode.err" &&
		[ -z "$retried" ]; then
		wait "$mon"
		echo "KNOWN ISSUE: $mode: the guest triple-faulted before the SIGTERM" \
			"(docs/parent-instance.md §6): $(grep -o 'enclave ended: .*' "$hw/$mode.err"); once more"
		race_then_term "$mode" "$line" retried
		return
	fi
	t0=$(date +%s%N)
	kill -TERM "$mon"
	for _ in $(seq 1 200); do
		kill -0 "$mon" 2>/dev/null || break
		sleep 0.1
	done
	ms=$((($(date +%s%N) - t0) / 1000000))
	if kill -0 "$mon" 2>/dev/null; then
		fail "$mode: the monitor ignored SIGTERM for $ms ms while the guest hammered; killing it"
		kill -KILL "$mon"
	fi
	wait "$mon"
	rc=$?
	echo "note: $mode: exit $rc $ms ms after SIGTERM, $((SECONDS - start)) s in all"
	check "$mode" "$rc" 14 "enclave ended: terminated: terminated by signal" "$line"
}

if [ "$(allowed_cpus | wc -l)" -lt 2 ]; then
	fail "racing vCPUs: this shell may run on $(allowed_cpus | wc -l) CPU; need 2"
else
	# nsm-race runs where KVM is real. In the parent instance it destabilises the emulated
	# machine below the monitor: the guest triple-faulted in 3 of 4 runs on 2026-12-03 (after
	# 1000 correct answers, interrupts off), and once the L1 kernel itself panicked ("corrupted
	# stack end detected inside scheduler") — docs/parent-instance.md §6.
	if [ -n "${E2E_PARENT_INSTANCE:-}" ]; then
		echo "note: nsm-race not run in the parent instance (docs/parent-instance.md §6);" \
			"every kick is serialised by the transport's lock; vsock-race below races the same way"
	else
		race_then_term nsm-race "nsm-race: 1000 answers while both vCPUs hammer the queue"
	fi
	race_then_term vsock-race "vsock-race: 2000 packets taken while both vCPUs hammer the queue"
	# Spoofed-source junk: named 4 times, then at debug level only, however much the guest sends.
	n=$(grep -c "vsock: dropped a packet from the guest: source CID" "$hw/vsock-race.err")
	[ "$n" -eq 4 ] && pass "vsock-race: thousands of junk packets, 4 named in the log" ||
		fail "vsock-race: $n junk packets named in the log, want 4"
	start=$SECONDS
	CPUS=2 run_case vsock-desc-flip 13 \
		"${ended}virtio vsock: tx queue 1: descriptor chain too long .*descriptor 7 names next 0" \
		"vCPU 1 started"
	echo "note: vsock-desc-flip: $((SECONDS - start)) s"
fi
finish
