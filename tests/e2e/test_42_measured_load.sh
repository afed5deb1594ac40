#!/usr/bin/env bash
# The PCRs are those of the image the enclave boots, not of the file as it was when run-enclave
# first read it (docs/security.md, "Measured from guest memory"). The parent is not trusted by
# whoever verifies a document: if it can swap the EIF between the parse and the load, an
# enclave running image B must not attest as image A. Here a watcher (inotify) replaces the
# file with another image the moment the enclave process closes it after its first read; the
# enclave then boots the replacement (its init extended PCR16, which image A's does not), and
#   - DescribePCR 0 inside the enclave (the NSM's PCR0, what documents carry),
#   - describe-enclaves' Measurements.PCR0,
#   - and a verified attestation document's PCR0
# must all be the replacement's, as describe-eif prints it.
# e2e-timeout: 900
. "$(dirname "$0")/monitor-lib.sh"

. "$top/scripts/demo-lib.sh"
DEMO_CLI=$cloister
e2e_nitro_dir measured-load

first=$(bash "$top/scripts/build-demo-image.sh" "$build" 2>"$w/build.err") ||
	{ fail "build the demo image: $(tail -3 "$w/build.err")"; finish; }
second=$(bash "$top/scripts/build-demo-image.sh" --measure "$build" 2>"$w/build2.err") ||
	{ fail "build the measured demo image: $(tail -3 "$w/build2.err")"; finish; }
pcr0_of() {
	"$cloister" describe-eif --eif-path "$1" >"$w/describe-eif.json" &&
		json_str "$w/describe-eif.json" PCR0
}
pcr0_first=$(pcr0_of "$first") && pcr0_second=$(pcr0_of "$second") || { fail "describe-eif"; finish; }
[ "$pcr0_first" != "$pcr0_second" ] || { fail "the two demo images have the same PCR0"; finish; }
zero48=$(printf '0%.0s' $(seq 96))

ncpu=$(nproc)
[ "$ncpu" -ge 2 ] || { fail "need 2 or more CPUs, have $ncpu"; finish; }
printf -- '---\nmemory_mib: 256\ncpu_pool: 1-%d\n' $((ncpu - 1)) >"$w/allocator.yaml"
"$cloister" allocator --config "$w/allocator.yaml" >"$w/alloc.out" 2>&1 ||
	{ fail "allocator: $(cat "$w/alloc.out")"; finish; }
id=
cleanup() {
	demo_forward_stop
	[ -n "$id" ] && "$cloister" terminate-enclave --enclave-id "$id" >/dev/null 2>&1
	[ -n "${watcher:-}" ] && kill "$watcher" 2>/dev/null
	"$cloister" allocator --config "$w/allocator.yaml" --release >/dev/null 2>&1
}
trap cleanup EXIT

cp "$first" "$w/app.eif" && cp "$second" "$w/replacement.eif" || { fail "copy the images"; finish; }
# The watcher: on the first close of app.eif by a reader, rename the replacement over it.
python3 - "$w/app.eif" "$w/replacement.eif" "$w/watcher" <<'PY' &
import ctypes, os, struct, sys
path, repl, status = sys.argv[1:4]
IN_CLOSE_NOWRITE = 0x10
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.inotify_init1(os.O_CLOEXEC)
if fd < 0 or libc.inotify_add_watch(fd, path.encode(), IN_CLOSE_NOWRITE) < 0:
    sys.exit("inotify: " + os.strerror(ctypes.get_errno()))
open(status, "w").write("watching\n")
while True:
    buf = os.read(fd, 4096)
    _, mask, _, _ = struct.unpack_from("iIII", buf)
    if mask & IN_CLOSE_NOWRITE:
        os.replace(repl, path)
        open(status, "a").write("swapped\n")
        break
PY
watcher=$!
for _ in $(seq 100); do
	grep -q watching "$w/watcher" 2>/dev/null && break
	sleep 0.1
done
grep -q watching "$w/watcher" 2>/dev/null || { fail "the inotify watcher did not start"; finish; }

if "$cloister" run-enclave --eif-path "$w/app.eif" --memory 256 --cpu-count 1 \
	--enclave-cid 42 >"$w/run.json" 2>"$w/run.err"; then
	id=$(json_str "$w/run.json" EnclaveID)
	pass "run-enclave booted $id"
else
	fail "run-enclave: $(tail -3 "$w/run.err")"
	tail -20 "$NITRO_CLI_LOGS_PATH"/* 2>/dev/null
	finish
fi
wait "$watcher" 2>/dev/null
watcher=
grep -q swapped "$w/watcher" && pass "the file was replaced after the enclave process read it" ||
	{ fail "the watcher never replaced the file"; finish; }

DEMO_FWD_LOG=$w/forward.err
demo_forward_start --enclave-id "$id" || { fail "cloister vsock-forward"; finish; }
demo_wait 120 >/dev/null || { fail "the demo app never answered on vsock port 5000"; finish; }

# Which image runs: the measured image's init extended and locked PCR16.
read -r pcr16 _ < <(demo_req "PCR 16")
if [ -n "$pcr16" ] && [ "$pcr16" != "$zero48" ]; then
	pass "the enclave runs the replacement (PCR16 extended by its init)"
else
	fail "the enclave runs the first image (PCR16 '$pcr16'): the replacement came after the load, nothing was tested"
	finish
fi

read -r inside _ < <(demo_req "PCR 0")
[ "$inside" = "$pcr0_second" ] &&
	pass "DescribePCR 0 in the enclave is the replacement's PCR0 (describe-eif)" ||
	fail "DescribePCR 0 '$inside': want the replacement's $pcr0_second (first image's: $pcr0_first)"

"$cloister" describe-enclaves >"$w/describe.json" 2>&1 || fail "describe-enclaves"
listed=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["Measurements"]["PCR0"])' \
	"$w/describe.json" 2>/dev/null)
[ "$listed" = "$pcr0_second" ] &&
	pass "describe-enclaves lists the replacement's PCR0" ||
	fail "describe-enclaves PCR0 '$listed': want $pcr0_second (first image's: $pcr0_first)"

nonce=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
if demo_attest "$nonce" "$w/doc.cbor" >/dev/null; then
	"$cloister" verify-attestation --document "$w/doc.cbor" --root "$CLOISTER_CA_DIR/root.pem" \
		--pcr "0=$pcr0_second" --nonce "$nonce" >"$w/verify.json" 2>&1 &&
		pass "its attestation document verifies with the replacement's PCR0" ||
		fail "verify-attestation with the replacement's PCR0: $(cat "$w/verify.json")"
else
	fail "ATTEST failed"
fi
finish
