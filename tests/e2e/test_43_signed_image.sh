#!/usr/bin/env bash
# Signed images (docs/eif.md "Signature", nitro-compat §1.5): PCR8 names the image's signer, so
# the NSM may carry it only for an image whose signature holds.
#   - the demo image signed with sign-eif (a P-384 key and its self-signed certificate) boots
#     with an NSM; DescribePCR 8 inside and a verified document's PCR8 are describe-eif's PCR8;
#   - the same signed image with one cmdline byte changed (CRC fixed up, so only the signature
#     is wrong — what copying a vendor's signature section onto another image gives) is refused
#     before any vCPU runs: cloister-monitor exits 5 naming the signature, run-enclave fails with
#     nitro-cli's E59, and the pool gets everything back.
# e2e-timeout: 900
. "$(dirname "$0")/monitor-lib.sh"

. "$top/scripts/demo-lib.sh"
DEMO_CLI=$cloister
e2e_nitro_dir signed-image

demo=$(bash "$top/scripts/build-demo-image.sh" "$build" 2>"$w/build.err") ||
	{ fail "build the demo image: $(tail -3 "$w/build.err")"; finish; }
openssl ecparam -name secp384r1 -genkey -noout -out "$w/key.pem" 2>/dev/null &&
	openssl req -new -x509 -key "$w/key.pem" -out "$w/cert.pem" -days 30 \
		-subj "/O=cloister e2e/CN=image signer" 2>/dev/null ||
	{ fail "openssl: a P-384 signing key and certificate"; finish; }
cp "$demo" "$w/signed.eif"
"$cloister" sign-eif --eif-path "$w/signed.eif" --signing-certificate "$w/cert.pem" \
	--private-key "$w/key.pem" >/dev/null 2>"$w/sign.err" ||
	{ fail "sign-eif: $(cat "$w/sign.err")"; finish; }
"$cloister" describe-eif --eif-path "$w/signed.eif" >"$w/signed.json" ||
	{ fail "describe-eif of the signed image"; finish; }
pcr0=$(json_str "$w/signed.json" PCR0)
pcr8=$(json_str "$w/signed.json" PCR8)
[ -n "$pcr8" ] && grep -q '"SignatureCheck": *true' "$w/signed.json" &&
	pass "sign-eif: describe-eif shows PCR8 and SignatureCheck true" ||
	{ fail "describe-eif of the signed image: $(cat "$w/signed.json")"; finish; }

# The forgery: a cmdline byte changed after signing, the CRC made right again.
python3 - "$w/signed.eif" "$w/forged.eif" <<'PY' || { fail "cannot forge the image"; finish; }
import struct, sys, zlib
b = bytearray(open(sys.argv[1], "rb").read())
n = struct.unpack_from(">H", b, 0x1A)[0]
for i in range(n):
    off = struct.unpack_from(">Q", b, 0x1C + 8 * i)[0]
    if struct.unpack_from(">H", b, off)[0] == 2:  # the cmdline section
        b[off + 12] ^= 0x20
        break
else:
    sys.exit("no cmdline section")
struct.pack_into(">I", b, 0x220, zlib.crc32(b[0x224:], zlib.crc32(b[:0x220])))
open(sys.argv[2], "wb").write(b)
PY
"$cloister" describe-eif --eif-path "$w/forged.eif" >"$w/forged.json" 2>&1
if grep -q '"SignatureCheck": *false' "$w/forged.json" &&
	[ "$(json_str "$w/forged.json" PCR8)" = "$pcr8" ] &&
	[ "$(json_str "$w/forged.json" PCR0)" != "$pcr0" ]; then
	pass "the forged image: valid CRC, the signer's PCR8, another PCR0, SignatureCheck false"
else
	fail "the forged image is not what the test needs: $(cat "$w/forged.json")"
	finish
fi

# --- run-enclave: E59, and the pool is whole again (first: the pool reserves its own hugepages)
trap 'demo_monitor_stop; "$cloister" allocator --config "$w/allocator.yaml" --release >/dev/null 2>&1' EXIT
ncpu=$(nproc)
printf -- '---\nmemory_mib: 256\ncpu_pool: 1-%d\n' $((ncpu - 1)) >"$w/allocator.yaml"
"$cloister" allocator --config "$w/allocator.yaml" >"$w/alloc.out" 2>&1 ||
	{ fail "allocator: $(cat "$w/alloc.out")"; finish; }
free_before=$(free_hugepages)
"$cloister" run-enclave --eif-path "$w/forged.eif" --memory 256 --cpu-count 1 \
	--enclave-cid 44 >"$w/run.json" 2>"$w/run.err"
rc=$?
if [ "$rc" -ne 0 ] && grep -q "E59" "$w/run.err"; then
	pass "run-enclave refuses the forged image with E59"
else
	fail "run-enclave on the forged image: exit $rc: $(head -3 "$w/run.err")"
fi
"$cloister" describe-enclaves >"$w/describe.json" 2>&1
[ "$(tr -d ' \n' <"$w/describe.json")" = "[]" ] && [ "$(free_hugepages)" = "$free_before" ] &&
	pass "after the refusal: no enclave listed, the pool's hugepages all free" ||
	fail "after the refusal: describe-enclaves $(cat "$w/describe.json"), free hugepages $(free_hugepages) (were $free_before)"
"$cloister" allocator --config "$w/allocator.yaml" --release >/dev/null 2>&1

ensure_hugepages 256
uds=$w/enclave.vsock

# --- cloister-monitor: the forged image is refused before it runs
rm -f "$w/booted"
timeout 300 "$monitor" --eif "$w/forged.eif" --memory 256 --cpu-count 1 --cid 43 \
	--vsock-uds "$uds" --heartbeat-timeout 180 --booted-fd 3 \
	--enclave-id "i-0000000000000043-enc$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')" \
	3>"$w/booted" >"$w/forged.out" 2>"$w/forged.err"
rc=$?
if [ "$rc" -eq 5 ] && grep -q "signature" "$w/forged.err" && ! grep -q booted "$w/booted"; then
	pass "cloister-monitor refuses the forged image (exit 5): $(grep -m1 signature "$w/forged.err")"
else
	fail "cloister-monitor on the forged image: exit $rc, booted: $(cat "$w/booted"): $(tail -3 "$w/forged.err")"
fi

# --- the signed image boots; its NSM carries PCR8
demo_monitor_start "$w" "$w/signed.eif" \
	"i-0000000000000043-enc$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')" 45 || finish
pass "the signed image boots with an NSM"
read -r inside _ < <(demo_req "PCR 8")
[ "$inside" = "$pcr8" ] && pass "DescribePCR 8 in the enclave = describe-eif's PCR8" ||
	fail "DescribePCR 8: '$inside', want $pcr8"
nonce=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
if demo_attest "$nonce" "$w/doc.cbor" >/dev/null; then
	"$cloister" verify-attestation --document "$w/doc.cbor" --root "$CLOISTER_CA_DIR/root.pem" \
		--pcr "0=$pcr0" --pcr "8=$pcr8" --nonce "$nonce" >"$w/verify.json" 2>&1 &&
		pass "its document verifies with describe-eif's PCR0 and PCR8" ||
		fail "verify-attestation --pcr 8: $(cat "$w/verify.json")"
else
	fail "ATTEST failed"
fi
finish
