#!/usr/bin/env bash
# Usage: scripts/demo-inside.sh [EIF]
# The part of the main job (scripts/demo.sh, docs/demo.md) that needs a KVM able to boot Linux:
# run directly on such a host, or inside the parent instance. Starts the demo enclave, shows
# it, talks to its app over vsock, has it attest with a fresh nonce, verifies the document
# offline against the CA root and the image's PCRs, terminates it, and prints a report.
# The enclave is run the nitro-cli way: `cloister allocator` reserves a pool (its own
# allocator.yaml and state directory, released at the end), then `cloister run-enclave`,
# `describe-enclaves`, `vsock-forward --enclave-id`, `terminate-enclave`.
# EIF defaults to build/demo/demo.eif (built by scripts/build-demo-image.sh when missing).
# Environment: CLOISTER_CA_DIR (default build/demo/ca: the host's /etc is read-only inside the
# parent instance, and the root stays next to the image for verifiers), DEMO_CID (default 16).
# Enclave sockets and the pool live in a temporary NITRO_CLI_SOCKETS_PATH, logs in
# build/demo/logs (NITRO_CLI_LOGS_PATH), so the demo never touches a pool you already have.
# Exit status 0 only if every step worked.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=$top/build
cli=$build/src/cli/cloister
. "$top/scripts/demo-lib.sh"
DEMO_CLI=$cli

eif=${1:-$build/demo/demo.eif}
cid=${DEMO_CID:-16}
memory=256
export CLOISTER_CA_DIR=${CLOISTER_CA_DIR:-$build/demo/ca}
run=$(mktemp -d "${TMPDIR:-/tmp}/cloister-demo.XXXXXX")
enclave_id=
pool=0
export NITRO_CLI_SOCKETS_PATH=$run/sockets
export NITRO_CLI_LOGS_PATH=$build/demo/logs
mkdir -p "$NITRO_CLI_SOCKETS_PATH" "$NITRO_CLI_LOGS_PATH"

step() { printf '\n==> %s\n' "$*"; }
cleanup() {
	demo_forward_stop
	if [ -n "$enclave_id" ]; then
		"$cli" terminate-enclave --enclave-id "$enclave_id" >/dev/null 2>&1
		enclave_id=
	fi
	if [ "$pool" = 1 ]; then
		"$cli" allocator --release >/dev/null 2>&1
		pool=0
	fi
	rm -rf "$run"
}
die() {
	echo "demo: FAILED: $*" >&2
	[ -s "$run/run.err" ] && sed 's/^/  run-enclave: /' "$run/run.err" | tail -5 >&2
	cleanup
	exit 1
}
trap 'cleanup' EXIT
trap 'die "interrupted"' INT TERM

[ -x "$cli" ] || die "build first: meson setup build && ninja -C build"
if [ ! -f "$eif" ]; then
	eif=$(bash "$top/scripts/build-demo-image.sh" "$build") || die "cannot build the demo image"
fi
"$cli" describe-eif --eif-path "$eif" >"$run/describe.json" || die "describe-eif $eif"
pcr0=$(json_str "$run/describe.json" PCR0)
pcr1=$(json_str "$run/describe.json" PCR1)
pcr2=$(json_str "$run/describe.json" PCR2)

step "attestation CA ($CLOISTER_CA_DIR)"
if [ ! -f "$CLOISTER_CA_DIR/root.pem" ]; then
	"$cli" ca init >/dev/null || die "cloister ca init"
fi
"$cli" ca show | sed 's/^/  /'
root=$CLOISTER_CA_DIR/root.pem

step "the enclave pool: cloister allocator ($memory MiB of hugepages, one core)"
# Whole cores only, never CPU 0's: as many CPUs as CPU 0's core has threads.
threads=$(awk -F, '{ n = 0; for (i = 1; i <= NF; i++) { split($i, r, "-"); n += (r[2] == "" ? 1 : r[2] - r[1] + 1) } print n }' \
	/sys/devices/system/cpu/cpu0/topology/thread_siblings_list 2>/dev/null || echo 1)
printf -- '---\nmemory_mib: %d\ncpu_count: %d\n' "$memory" "$threads" >"$run/allocator.yaml"
"$cli" allocator --config "$run/allocator.yaml" >"$run/alloc.out" 2>&1 ||
	die "cloister allocator: $(tail -2 "$run/alloc.out") (the host needs a CPU core besides CPU 0's)"
pool=1
tail -1 "$run/alloc.out" | sed 's/^/  /'

step "cloister run-enclave --eif-path … --memory $memory --cpu-count $threads --enclave-cid $cid"
t0=$EPOCHREALTIME
"$cli" run-enclave --eif-path "$eif" --memory "$memory" --cpu-count "$threads" \
	--enclave-cid "$cid" --enclave-name cloister-demo >"$run/run.json" 2>"$run/run.err" ||
	die "run-enclave exit $?: $(tail -1 "$run/run.err")"
# run-enclave returns once the enclave's init has sent the boot heartbeat.
boot_s=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }')
enclave_id=$(json_str "$run/run.json" EnclaveID)
[ -n "$enclave_id" ] || die "run-enclave printed no EnclaveID"
sed 's/^/  /' "$run/run.err" "$run/run.json"
echo "  booted (heartbeat received) $boot_s s after run-enclave started"

step "cloister describe-enclaves"
"$cli" describe-enclaves >"$run/describe-enclaves.json" 2>&1 || die "describe-enclaves"
sed 's/^/  /' "$run/describe-enclaves.json"
grep -q "\"$enclave_id\"" "$run/describe-enclaves.json" || die "describe-enclaves does not list $enclave_id"

step "talking to the app over vsock (port 5000, through cloister vsock-forward)"
DEMO_FWD_LOG=$run/forward.err
demo_forward_start --enclave-id "$enclave_id" || die "cloister vsock-forward did not start"
app_s=$(demo_wait 120) || die "the demo app did not answer on vsock port 5000"
msg="hello from the parent, $(date -u +%H:%M:%S)"
echo_got=$(demo_req "ECHO $msg") || die "ECHO failed"
[ "$echo_got" = "$msg" ] || die "ECHO returned '$echo_got', sent '$msg'"
echo "  sent:     $msg"
echo "  received: $echo_got"
info=$(demo_req INFO) || die "INFO: the app cannot reach the NSM"
echo "  NSM: $info"

step "attestation: a document for a fresh nonce, verified offline"
nonce=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
ud=$(hex_of "cloister demo")
doc=$build/demo/attestation.cbor
n=$(demo_attest "$nonce" "$ud" "$doc") || die "ATTEST failed"
echo "  nonce:    $nonce"
echo "  document: $doc ($n bytes, COSE_Sign1 ES384)"
echo "  $cli verify-attestation --document $doc --root $root --pcr 0=… --pcr 1=… --pcr 2=… --nonce … --user-data …"
"$cli" verify-attestation --document "$doc" --root "$root" --pcr "0=$pcr0" --pcr "1=$pcr1" \
	--pcr "2=$pcr2" --nonce "$nonce" --user-data "$ud" >"$run/verify.json" 2>&1
vrc=$?
sed -n '1,5p' "$run/verify.json" | sed 's/^/  /'
[ "$vrc" -eq 0 ] || die "verify-attestation exit $vrc: $(grep -m1 Error "$run/verify.json")"
[ "$(json_str "$run/verify.json" ModuleId)" = "$enclave_id" ] || die "the document names another enclave"
perl -e 'local $/; open(my $f, "<:raw", $ARGV[0]) or die; my $d = <$f>;
	substr($d, -1, 1) ^= "\x01"; open(my $o, ">:raw", $ARGV[1]) or die; print $o $d;' \
	"$doc" "$run/tampered.cbor" || die "cannot write the tampered copy"
"$cli" verify-attestation --document "$run/tampered.cbor" --root "$root" >/dev/null 2>&1
trc=$?
[ "$trc" -ne 0 ] || die "a tampered document verified"
echo "  the same document with its last signature byte changed: refused (exit $trc)"

step "cloister terminate-enclave --enclave-id $enclave_id"
demo_forward_stop
"$cli" terminate-enclave --enclave-id "$enclave_id" >"$run/term.json" 2>"$run/term.err" ||
	die "terminate-enclave exit $?: $(tail -1 "$run/term.err")"
sed 's/^/  /' "$run/term.err" "$run/term.json"
ended=$enclave_id
enclave_id=
"$cli" describe-enclaves >"$run/after.json" 2>&1
! grep -q "$ended" "$run/after.json" || die "describe-enclaves still lists $ended"
"$cli" allocator --release >"$run/release.out" 2>&1 ||
	die "cloister allocator --release: $(tail -2 "$run/release.out")"
pool=0
echo "  describe-enclaves: $(tr -d ' \n' <"$run/after.json"); pool released"

cat <<EOF | tee "$build/demo/report.txt"

==================== cloister demo: report ====================
image        $eif
  PCR0       $pcr0
  PCR1       $pcr1
  PCR2       $pcr2
enclave      $ended (CID $cid, $memory MiB, $threads vCPU)
boot         heartbeat $boot_s s after run-enclave started; app answering $app_s s later
echo         "$echo_got" (matches)
attestation  $n bytes, nonce bound; verify-attestation: VALID against
             $root
             (signature, chain, PCR0-2, nonce, user data, module id); tampered copy refused
terminate    terminate-enclave: terminated; describe-enclaves empty; pool released
===============================================================
EOF
