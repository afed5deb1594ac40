#!/usr/bin/env bash
# Attestation end to end (docs/attestation.md, docs/demo.md): the demo image, built without
# Docker by build-enclave, boots in cloister-monitor with a virtio-nsm device. Through the demo
# app on vsock port 5000 (libnsm inside, /dev/nsm from the kernel's nsm.ko):
#   - a document with a fresh nonce and user data verifies on the host against the CA root and
#     the PCR0-2 that describe-eif prints, the module id is the enclave id; a different nonce,
#     a different root, and a tampered document are refused with their exit statuses;
#   - DescribePCR 0 = describe-eif's PCR0, locked; PCR16 starts at zero, extends as
#     SHA-384(old ‖ data) (computed here with openssl dgst), locks, then is read-only;
#     a locked image PCR and an index past 31 give ReadOnlyIndex / InvalidIndex; GetRandom;
#   - a debug-mode enclave of the measured image: its document verifies but has zero PCR0-2
#     (so pinning PCR0 refuses it), and measured launch left PCR16 at the value build-enclave
#     printed, locked (cloister-init's ExtendPCR + LockPCR through the real device).
# e2e-timeout: 900
. "$(dirname "$0")/monitor-lib.sh"

. "$top/scripts/demo-lib.sh"
DEMO_CLI=$cloister
if ! "$monitor" --help 2>&1 | grep -q -- '--enclave-id'; then
	echo "cloister-monitor has no --enclave-id option"
	echo "virtio-nsm not wired in the monitor yet"
	exit 77
fi

at=$work/attest
rm -rf "$at" && mkdir -p "$at"
export CLOISTER_CA_DIR=$at/ca
"$cloister" ca init >/dev/null || { fail "cloister ca init"; finish; }
root=$CLOISTER_CA_DIR/root.pem

eif=$(bash "$top/scripts/build-demo-image.sh" "$build" 2>"$at/build.err") ||
	{ fail "build the demo image: $(tail -3 "$at/build.err")"; finish; }
meif=$(bash "$top/scripts/build-demo-image.sh" --measure "$build" 2>"$at/build-measured.err") ||
	{ fail "build the measured demo image: $(tail -3 "$at/build-measured.err")"; finish; }
pass "demo images built with build-enclave --rootfs (no Docker)"

# pcr_of EIF N: PCRn as describe-eif prints it
pcr_of() {
	"$cloister" describe-eif --eif-path "$1" >"$at/describe.json" && json_str "$at/describe.json" "PCR$2"
}
pcr0=$(pcr_of "$eif" 0) && pcr1=$(pcr_of "$eif" 1) && pcr2=$(pcr_of "$eif" 2) ||
	{ fail "describe-eif"; finish; }
zero48=$(printf '0%.0s' $(seq 96))

ensure_hugepages 512
trap demo_monitor_stop EXIT

# start_enclave EIF ENCLAVE_ID [MONITOR ARGS...]: boot, wait for the heartbeat and the app.
start_enclave() {
	local img=$1 id=$2
	shift 2
	rm -f "$at/console.log"
	demo_monitor_start "$at" "$img" "$id" 17 "$@"
}

# verify DOC [ARGS...]: cloister verify-attestation against our root; sets $vrc, $vout and
# $at/verify.json.
verify() {
	local doc=$1
	shift
	"$cloister" verify-attestation --document "$doc" --root "$root" "$@" >"$at/verify.json" 2>&1
	vrc=$?
	vout=$(cat "$at/verify.json")
}
json_get() { json_str "$at/verify.json" "$1"; }

# ---------------------------------------------------------------- production-mode enclave
id=i-0000000000000040-enc$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
if start_enclave "$eif" "$id"; then
	pass "production enclave $id booted, demo app answering"

	nonce=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
	ud=$(hex_of cloister-e2e)
	if n=$(demo_attest "$nonce" "$ud" "$at/doc.cbor"); then
		pass "the app returned a $n-byte attestation document for a fresh nonce"
	else
		fail "ATTEST: $n"
	fi
	verify "$at/doc.cbor" --pcr "0=$pcr0" --pcr "1=$pcr1" --pcr "2=$pcr2" --nonce "$nonce" \
		--user-data "$ud"
	if [ "$vrc" -eq 0 ] && [ "$(json_get Valid)" = true ] && [ "$(json_get ModuleId)" = "$id" ]; then
		pass "verify-attestation: valid against the CA root, PCR0-2 of describe-eif, nonce, user data, module id $id"
	else
		fail "verify-attestation exit $vrc: $vout"
	fi
	other=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
	verify "$at/doc.cbor" --nonce "$other"
	[ "$vrc" -eq 6 ] && pass "another nonce: refused (exit 6)" || fail "another nonce: exit $vrc"
	verify "$at/doc.cbor" --pcr "0=$zero48"
	[ "$vrc" -eq 6 ] && pass "another PCR0: refused (exit 6)" || fail "another PCR0: exit $vrc"
	"$cloister" ca init --dir "$at/other-ca" >/dev/null
	vout=$("$cloister" verify-attestation --document "$at/doc.cbor" --root "$at/other-ca/root.pem" 2>&1)
	vrc=$?
	[ "$vrc" -eq 5 ] && pass "another CA's root: refused (exit 5)" || fail "another root: exit $vrc"
	# Tamper: one bit of the payload's nonce (its last byte) and one bit of the signature.
	perl -e '
		local $/; open(my $f, "<:raw", $ARGV[0]) or die; my $doc = <$f>;
		my $nonce = pack("H*", $ARGV[1]); my $i = rindex($doc, $nonce);
		die "nonce not found in the document\n" if $i <= 0;
		my $t = $doc; substr($t, $i + length($nonce) - 1, 1) ^= "\x01";
		open(my $o, ">:raw", "$ARGV[0].payload") or die; print $o $t; close $o;
		$t = $doc; substr($t, -1, 1) ^= "\x01";
		open($o, ">:raw", "$ARGV[0].sig") or die; print $o $t; close $o;
	' "$at/doc.cbor" "$nonce" || fail "cannot tamper with the document"
	verify "$at/doc.cbor.payload"
	[ "$vrc" -eq 4 ] && pass "a payload bit flipped: signature refused (exit 4)" ||
		fail "tampered payload: exit $vrc: $vout"
	verify "$at/doc.cbor.sig"
	[ "$vrc" -eq 4 ] && pass "a signature bit flipped: refused (exit 4)" ||
		fail "tampered signature: exit $vrc: $vout"

	# PCRs through the app (libnsm inside).
	out=$(demo_req "PCR 0")
	[ "$out" = "$pcr0 locked" ] && pass "DescribePCR 0 in the enclave = describe-eif's PCR0, locked" ||
		fail "DescribePCR 0: '$out' (want '$pcr0 locked')"
	out=$(demo_req "PCR 16")
	[ "$out" = "$zero48 unlocked" ] && pass "PCR16 starts zero and unlocked" ||
		fail "PCR16 at start: '$out'"
	data=$(hex_of "hello pcr16")
	want=$(sha384_extend "$zero48" "$data")
	out=$(demo_req "EXTEND 16 $data")
	read -r now _ < <(demo_req "PCR 16")
	[ "$out" = "$want" ] && [ "$now" = "$want" ] &&
		pass "ExtendPCR 16 = SHA-384(0^48 ‖ data) (openssl), DescribePCR agrees" ||
		fail "ExtendPCR 16: '$out' / now '$now', want $want"
	demo_req "LOCK 16" >/dev/null
	out=$(demo_req "PCR 16")
	err=$(demo_req "EXTEND 16 $data" 2>&1)
	[ "$out" = "$want locked" ] && [[ $err == *ReadOnlyIndex* ]] &&
		pass "LockPCR 16: locked, then ExtendPCR is ReadOnlyIndex" ||
		fail "after LockPCR 16: '$out' / '$err'"
	err0=$(demo_req "EXTEND 0 $data" 2>&1)
	err32=$(demo_req "PCR 32" 2>&1)
	[[ $err0 == *ReadOnlyIndex* ]] && [[ $err32 == *InvalidIndex* ]] &&
		pass "ExtendPCR 0: ReadOnlyIndex; DescribePCR 32: InvalidIndex" ||
		fail "PCR rules: '$err0' / '$err32'"
	r1=$(demo_req RANDOM)
	r2=$(demo_req RANDOM)
	[[ $r1 =~ ^[0-9a-f]{64}$ ]] && [ "$r1" != "$r2" ] &&
		pass "GetRandom: 32 bytes, two calls differ" || fail "GetRandom: '$r1' '$r2'"

	demo_req QUIT >/dev/null
	demo_forward_stop
	wait "$DEMO_MON_PID"
	rc=$?
	DEMO_MON_PID=
	[ "$rc" -eq 0 ] && pass "the app quit, the enclave powered off (monitor exit 0)" ||
		fail "monitor exit $rc after QUIT: $(tail -3 "$at/monitor.err")"
fi

# ---------------------------------------------- debug-mode enclave of the measured image
want16=$(sed -n 's/^Measured launch: PCR16 will be \([0-9a-f]*\).*/\1/p' "$at/build-measured.err")
id=i-0000000000000041-enc$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
if start_enclave "$meif" "$id" --debug-mode --console "$at/console.log"; then
	pass "debug-mode enclave of the measured image booted"
	nonce=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
	demo_attest "$nonce" "$at/debug.cbor" >/dev/null
	verify "$at/debug.cbor" --nonce "$nonce"
	z=1
	for i in 0 1 2; do [ "$(json_get "$i")" = "$zero48" ] || z=0; done
	[ "$vrc" -eq 0 ] && [ "$z" = 1 ] &&
		pass "debug-mode document: valid, PCR0-2 all zero" ||
		fail "debug-mode document: exit $vrc, zero PCR0-2: $z: $vout"
	verify "$at/debug.cbor" --pcr "0=$(pcr_of "$meif" 0)"
	[ "$vrc" -eq 6 ] && pass "pinning the image's PCR0 refuses the debug document (exit 6)" ||
		fail "debug document with PCR0 pinned: exit $vrc"
	out=$(demo_req "PCR 16")
	[ -n "$want16" ] && [ "$out" = "$want16 locked" ] &&
		pass "measured launch: PCR16 = build-enclave's prediction, locked" ||
		fail "measured launch: PCR16 '$out', build-enclave predicted '$want16'"
	demo_req QUIT >/dev/null
	demo_forward_stop
	wait "$DEMO_MON_PID"
	DEMO_MON_PID=
fi
finish
