#!/usr/bin/env bash
# Usage: scripts/demo-inside.sh [EIF]
# The part of the main job (scripts/demo.sh, docs/demo.md) that needs a KVM able to boot Linux:
# run directly on such a host, or inside the parent instance. Starts the demo enclave, shows
# it, talks to its app over vsock, has it attest with a fresh nonce, verifies the document
# offline against the CA root and the image's PCRs, terminates it, and prints a report.
# EIF defaults to build/demo/demo.eif (built by scripts/build-demo-image.sh when missing).
# Environment: CLOISTER_CA_DIR (default build/demo/ca: the host's /etc is read-only inside the
# parent instance, and the root stays next to the image for verifiers), DEMO_CID (default 16).
# Exit status 0 only if every step worked.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=$top/build
cli=$build/src/cli/cloister
monitor=$build/src/vmm/cloister-monitor
. "$top/scripts/demo-lib.sh"
DEMO_CLI=$cli

eif=${1:-$build/demo/demo.eif}
cid=${DEMO_CID:-16}
memory=256
export CLOISTER_CA_DIR=${CLOISTER_CA_DIR:-$build/demo/ca}
run=$(mktemp -d "${TMPDIR:-/tmp}/cloister-demo.XXXXXX")
mon_pid=

step() { printf '\n==> %s\n' "$*"; }
cleanup() {
	demo_forward_stop
	if [ -n "$mon_pid" ]; then
		kill "$mon_pid" 2>/dev/null
		wait "$mon_pid" 2>/dev/null
		mon_pid=
	fi
	rm -rf "$run"
}
die() {
	echo "demo: FAILED: $*" >&2
	[ -s "$run/monitor.err" ] && sed 's/^/  monitor: /' "$run/monitor.err" | tail -5 >&2
	cleanup
	exit 1
}
trap 'cleanup' EXIT
trap 'die "interrupted"' INT TERM

[ -x "$cli" ] && [ -x "$monitor" ] || die "build first: meson setup build && ninja -C build"
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

step "hugepages for $memory MiB of enclave memory"
hp=/sys/kernel/mm/hugepages/hugepages-2048kB
want=$((memory / 2))
free=$(cat "$hp/free_hugepages")
if [ "$free" -lt "$want" ]; then
	# The pool grows by what is missing (cloister allocator does the same from allocator.yaml).
	echo $(($(cat "$hp/nr_hugepages") + want - free)) >"$hp/nr_hugepages" 2>/dev/null ||
		die "cannot reserve $want hugepages of 2 MiB (as root: echo N > $hp/nr_hugepages)"
fi
echo "  2 MiB hugepages free: $(cat "$hp/free_hugepages") (need $want)"

# Started with cloister-monitor directly: `cloister run-enclave` (the nitro-cli drop-in that
# also registers the enclave for describe-enclaves and terminate-enclave) is not on main yet.
step "starting the enclave (cloister-monitor, $memory MiB, 1 vCPU, CID $cid)"
enclave_id=i-0000000000000000-enc$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
uds=$run/$enclave_id.vsock
t0=$EPOCHREALTIME
"$monitor" --eif "$eif" --memory "$memory" --cpu-count 1 --cid "$cid" --vsock-uds "$uds" \
	--heartbeat-timeout 180 --booted-fd 3 --enclave-id "$enclave_id" \
	3>"$run/booted" >"$run/monitor.out" 2>"$run/monitor.err" &
mon_pid=$!
while ! grep -q booted "$run/booted" 2>/dev/null; do
	kill -0 "$mon_pid" 2>/dev/null || die "the enclave stopped before its boot heartbeat"
	sleep 0.05
done
boot_s=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }')
cat <<EOF
  {
    "EnclaveID": "$enclave_id",
    "ProcessID": $mon_pid,
    "EnclaveCID": $cid,
    "NumberOfCPUs": 1,
    "MemoryMiB": $memory,
    "State": "RUNNING",
    "Flags": "NONE"
  }
  boot heartbeat after $boot_s s
EOF

step "talking to the app over vsock (port 5000, through cloister vsock-forward)"
DEMO_FWD_LOG=$run/forward.err
demo_forward_start --uds "$uds" || die "cloister vsock-forward did not start"
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

step "terminating the enclave"
demo_forward_stop
kill -TERM "$mon_pid"
wait "$mon_pid"
mrc=$?
mon_pid=
grep -m1 'enclave ended' "$run/monitor.err" | sed 's/^/  /'
[ ! -e "$uds" ] || die "the enclave's vsock socket was left behind"

cat <<EOF | tee "$build/demo/report.txt"

==================== cloister demo: report ====================
image        $eif
  PCR0       $pcr0
  PCR1       $pcr1
  PCR2       $pcr2
enclave      $enclave_id (CID $cid, $memory MiB, 1 vCPU)
boot         heartbeat $boot_s s after start; app answering $app_s s later
echo         "$echo_got" (matches)
attestation  $n bytes, nonce bound; verify-attestation: VALID against
             $root
             (signature, chain, PCR0-2, nonce, user data, module id); tampered copy refused
terminate    monitor exit $mrc (14 = ended by signal, as asked), resources released
===============================================================
EOF
