#!/usr/bin/env bash
# e2e-timeout: 600
# build-enclave's EIFs in cloister's own monitor, through nitro-cli's commands: the demo image
# (tests/data/images/make-demo-oci.sh) built with the default-style blobs (Debian cloud kernel,
# cloister-init, modules) → run-enclave succeeds, which needs cloister-init's 0xB7 heartbeat
# to CID 3 → the demo echoes over vsock port 5000 and returns an NSM attestation document →
# the console shows it → terminate. Then the busybox image, whose app exits with status 3:
# the console of the ended enclave shows cloister-init's exit line, and in production mode
# the enclave's log shows the status from the exit report.
. "$(dirname "$0")/monitor-lib.sh"

nitro=$build/src/cli/nitro-cli
kernel=$(enclave_kernel) || { fail "no enclave kernel (scripts/fetch-kernel.sh enclave)"; finish; }
w=$work/build-enclave
rm -rf "$w" && mkdir -p "$w" || exit 1
export NITRO_CLI_SOCKETS_PATH=$w/run NITRO_CLI_LOGS_PATH=$w/log CLOISTER_CA_DIR=$w/ca
export SOURCE_DATE_EPOCH=1700000000 NITRO_CLI_BLOBS=$w/blobs
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }

"$cloister" blobs --kernel-dir "$(dirname "$(dirname "$kernel")")" \
	--init "$build/guest/init/cloister-init" --output "$w/blobs" >/dev/null 2>&1 ||
	{ fail "cloister blobs"; finish; }
bash "$top/tests/data/images/make-demo-oci.sh" "$w/demo" "$build" >/dev/null &&
	bash "$top/tests/data/images/make-busybox-oci.sh" "$w/bb" 3 >/dev/null ||
	{ fail "cannot make the test images"; finish; }
for img in demo bb; do
	"$cloister" build-enclave --docker-uri "oci-archive:$w/$img.tar" \
		--output-file "$w/$img.eif" >"$w/$img.build.json" 2>"$w/$img.build.err" ||
		{ fail "build-enclave $img: $(tail -3 "$w/$img.build.err")"; finish; }
done
pass "build-enclave: demo.eif $(stat -c %s "$w/demo.eif") bytes, bb.eif $(stat -c %s "$w/bb.eif") bytes"

ncpu=$(nproc)
[ "$ncpu" -ge 2 ] || { fail "need 2 or more CPUs, have $ncpu"; finish; }
printf -- '---\nmemory_mib: 512\ncpu_pool: 1-%d\n' $((ncpu - 1)) >"$w/allocator.yaml"
"$cloister" allocator --config "$w/allocator.yaml" >"$w/alloc.out" 2>&1 ||
	{ fail "allocator: $(cat "$w/alloc.out")"; finish; }
release() { "$cloister" allocator --config "$w/allocator.yaml" --release >/dev/null 2>&1; }

# --- the demo: heartbeat (run-enclave returns only after it), vsock echo, attestation
if "$nitro" run-enclave --eif-path "$w/demo.eif" --memory 256 --cpu-count 1 --debug-mode \
	>"$w/demo.json" 2>"$w/demo.err"; then
	pass "run-enclave (cloister-init's heartbeat answered): $(tr -d '\n ' <"$w/demo.json")"
else
	fail "run-enclave demo: $(cat "$w/demo.err")"
	tail -20 "$NITRO_CLI_LOGS_PATH"/* 2>/dev/null
	release
	finish
fi
id=$(json "$w/demo.json" 'd["EnclaveID"]')
uds=$NITRO_CLI_SOCKETS_PATH/$id.vsock
if out=$(timeout 120 python3 - "$uds" <<'PY'
import socket, struct, sys, time
deadline = time.time() + 90
while True:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(sys.argv[1])
    s.sendall(b"CONNECT 5000\n")
    line = b""
    while not line.endswith(b"\n"):
        b = s.recv(1)
        if not b:
            break
        line += b
    if line.startswith(b"OK "):
        break
    s.close()
    if time.time() > deadline:
        sys.exit("the demo never accepted on vsock port 5000")
    time.sleep(0.5)
s.sendall(b"hello enclave\n")
got = b""
while len(got) < 14:
    got += s.recv(64)
assert got == b"hello enclave\n", got
s.sendall(b"ATTEST cloister-e2e\n")
hdr = b""
while len(hdr) < 4:
    hdr += s.recv(4 - len(hdr))
n = struct.unpack(">I", hdr)[0]
doc = b""
while len(doc) < n:
    doc += s.recv(n - len(doc))
assert n > 0, "empty attestation document"
assert b"cloister-e2e" in doc, "user data missing from the document"
print("echo ok, attestation document %d bytes with the user data" % n)
PY
); then
	pass "demo over vsock: $out"
else
	fail "demo over vsock: $out"
fi
timeout 30 "$nitro" console --enclave-id "$id" --disconnect-timeout 2 >"$w/console.out" 2>&1
grep -q 'cloister demo: hello from the enclave' "$w/console.out" &&
	grep -q 'cloister demo: attestation document of' "$w/console.out" &&
	pass "console: the demo greeted and got an attestation document at start" ||
	fail "console: $(tail -5 "$w/console.out")"
# Every thread of the enclave process runs under a seccomp filter (docs/security.md): the main
# loop, the control thread and the vCPU threads ("Seccomp: 2" is filter mode). Kernel workers in
# the thread group (PF_USER_WORKER, 0x4000: KVM's NX huge page recovery on recent kernels) run
# no user code and are only listed.
epid=$(json "$w/demo.json" 'd["ProcessID"]')
seen="" bad="" n=0
for t in /proc/"$epid"/task/*; do
	comm=$(cat "$t/comm" 2>/dev/null) || continue
	mode=$(sed -n 's/^Seccomp:[[:space:]]*//p' "$t/status")
	flags=$(sed 's/.*) //' "$t/stat" | cut -d' ' -f7)
	if (((flags & 0x4000) != 0)); then
		seen="$seen $comm(kernel worker)"
		continue
	fi
	n=$((n + 1))
	seen="$seen $comm($mode)"
	[ "$mode" = 2 ] || bad="$bad $comm"
done
[ "$n" -ge 3 ] && [ -z "$bad" ] &&
	pass "all $n threads of the enclave process are filtered:$seen" ||
	fail "enclave process $epid: threads without a seccomp filter:${bad:- none, but only $n}; all:$seen"
"$nitro" terminate-enclave --enclave-id "$id" >"$w/term.json" 2>"$w/term.err" &&
	pass "terminate-enclave" || fail "terminate-enclave: $(cat "$w/term.err")"

# --- an app that exits: its status on the console of the ended enclave
if "$nitro" run-enclave --eif-path "$w/bb.eif" --memory 256 --cpu-count 1 --debug-mode \
	>"$w/bb.json" 2>"$w/bb.err"; then
	id=$(json "$w/bb.json" 'd["EnclaveID"]')
	for _ in $(seq 60); do
		timeout 10 "$nitro" console --enclave-id "$id" --disconnect-timeout 1 \
			>"$w/bbconsole.out" 2>&1
		grep -q 'cloister-init: app exited' "$w/bbconsole.out" && break
		sleep 1
	done
	grep -q 'Hello from the enclave: .*cwd /srv' "$w/bbconsole.out" &&
		grep -q 'cloister-init: app exited: status=3' "$w/bbconsole.out" &&
		pass "busybox app ran in /srv and its exit status 3 is on the console" ||
		fail "busybox console: $(tail -5 "$w/bbconsole.out")"
else
	fail "run-enclave bb: $(cat "$w/bb.err")"
fi
"$nitro" terminate-enclave --all >/dev/null 2>&1

# --- the same app in production mode (no console): its status reaches the enclave's log
# through cloister-init's exit report on vsock port 9001 (docs/vsock.md, "The exit report")
if "$nitro" run-enclave --eif-path "$w/bb.eif" --memory 256 --cpu-count 1 \
	>"$w/bbp.json" 2>"$w/bbp.err"; then
	id=$(json "$w/bbp.json" 'd["EnclaveID"]')
	for _ in $(seq 60); do
		grep -q 'enclave application exited' "$w/log/$id.log" 2>/dev/null && break
		sleep 1
	done
	grep -q 'enclave application exited with status 3' "$w/log/$id.log" &&
		pass "production mode: the app's exit status 3 is in the enclave's log" ||
		fail "production exit report: $(tail -5 "$w/log/$id.log" 2>&1)"
else
	fail "run-enclave bb (production): $(cat "$w/bbp.err")"
fi
"$nitro" terminate-enclave --all >/dev/null 2>&1
sleep 1 # terminate returns once the resources are back; the process exits right after
# A syscall missing from a list would have ended an enclave process with a SIGSYS report.
grep -h "seccomp:" "$NITRO_CLI_LOGS_PATH"/*.log >"$w/seccomp.txt" 2>/dev/null
[ ! -s "$w/seccomp.txt" ] && pass "no seccomp report in the enclave logs" ||
	fail "seccomp reports in the enclave logs: $(head -5 "$w/seccomp.txt")"
release
finish
