#!/usr/bin/env bash
# The README's main command, the part that needs KVM (scripts/demo-inside.sh, docs/demo.md):
# the demo image boots, answers ECHO over vsock, attests with a fresh nonce, the document
# verifies offline against the CA root and the image's PCRs, the enclave (run-enclave, listed by
# describe-enclaves) is terminated with terminate-enclave, the pool released, and the
# report is printed. CI runs this so the main job is proven on every change; scripts/demo.sh
# adds only setup, build and the choice between direct KVM and the parent instance.
# e2e-timeout: 600
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# A CA of its own, so the test neither needs nor changes build/demo/ca.
CLOISTER_CA_DIR=$tmp/ca bash "$top/scripts/demo-inside.sh" >"$tmp/out" 2>&1
rc=$?
cat "$tmp/out"
if [ "$rc" -ne 0 ]; then
	echo "FAIL: scripts/demo-inside.sh exit $rc"
	exit 1
fi
for want in '^echo  *"hello from the parent' 'verify-attestation: VALID' 'tampered copy refused' \
	'^boot  *heartbeat [0-9.]* s after run-enclave started' \
	'^terminate  *terminate-enclave: terminated; describe-enclaves empty; pool released'; do
	grep -q -- "$want" "$tmp/out" || { echo "FAIL: the report lacks /$want/"; exit 1; }
done
echo "PASS: the demo ran end to end and its report says so"
