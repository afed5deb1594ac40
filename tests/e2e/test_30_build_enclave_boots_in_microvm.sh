#!/usr/bin/env bash
# build-enclave end to end (docs/build-enclave.md): a busybox OCI image made offline
# (tests/data/images/make-busybox-oci.sh) → `cloister build-enclave`, twice, from the oci:
# and oci-archive: forms → byte-identical EIFs → the EIF's kernel, cmdline and both ramdisks
# booted under QEMU microvm (the reference VMM until cloister's monitor runs EIFs) →
# cloister-init loads its modules, runs the app in its WorkingDir with its Env, and reports
# the app's exit status on the console before powering off. The heartbeat is turned off
# (cloister.heartbeat=0): vhost-vsock's parent is CID 2, not Nitro's CID 3.
# e2e-timeout: 240
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cli=$top/build/src/cli/cloister
init=$top/build/guest/init/cloister-init
[ -x "$cli" ] && [ -x "$init" ] || { echo "build the project first"; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
kdir=$(bash "$top/scripts/fetch-kernel.sh" enclave)
"$cli" blobs --kernel-dir "$kdir" --init "$init" --output "$tmp/blobs" >/dev/null
bash "$top/tests/data/images/make-busybox-oci.sh" "$tmp/img" 3 >/dev/null

export SOURCE_DATE_EPOCH=1700000000 NITRO_CLI_BLOBS=$tmp/blobs
start=$(date +%s%N)
"$cli" build-enclave --docker-uri "oci-archive:$tmp/img.tar" --output-file "$tmp/a.eif" \
	>"$tmp/a.json" 2>"$tmp/a.err"
echo "build-enclave: $((($(date +%s%N) - start) / 1000000)) ms, $(stat -c %s "$tmp/a.eif") bytes"
"$cli" build-enclave --docker-uri "oci:$tmp/img:latest" --output-file "$tmp/b.eif" \
	>/dev/null 2>&1
cmp "$tmp/a.eif" "$tmp/b.eif" || { echo "oci: and oci-archive: builds differ"; exit 1; }
grep -q '"PCR2"' "$tmp/a.json" || { echo "no measurements printed"; cat "$tmp/a.json"; exit 1; }
grep -q 'Enclave Image successfully created.' "$tmp/a.err"

# Split the EIF (nitro-compat §1.1): the hypervisor concatenates the ramdisks.
python3 - "$tmp/a.eif" "$tmp" <<'PY'
import struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack(">H", b[0x1a:0x1c])[0]
offs = struct.unpack(">32Q", b[0x1c:0x11c])
sizes = struct.unpack(">32Q", b[0x11c:0x21c])
ramdisks = []
for i in range(n):
    t = struct.unpack(">H", b[offs[i]:offs[i] + 2])[0]
    data = b[offs[i] + 12:offs[i] + 12 + sizes[i]]
    if t == 1:
        open(sys.argv[2] + "/kernel", "wb").write(data)
    elif t == 2:
        open(sys.argv[2] + "/cmdline", "wb").write(data)
    elif t == 3:
        ramdisks.append(data)
assert len(ramdisks) == 2, len(ramdisks)
open(sys.argv[2] + "/initrd", "wb").write(b"".join(ramdisks))
PY

rc=0
timeout 120 bash "$top/tests/e2e/lib/microvm.sh" boot --kernel "$tmp/kernel" \
	--initrd "$tmp/initrd" \
	--append "$(cat "$tmp/cmdline") cloister.heartbeat=0 cloister.exit_port=0" \
	>"$tmp/console.log" 2>"$tmp/qemu.log" || rc=$?
tr -d '\r' <"$tmp/console.log" | grep -E '^(cloister-init|Hello|GREETING)' || true
if ! tr -d '\r' <"$tmp/console.log" | grep -q '^Hello from the enclave: pid [0-9]*, cwd /srv'; then
	echo "the app did not run (QEMU exit $rc)"
	echo "--- console"; tail -30 "$tmp/console.log"
	echo "--- qemu"; tail -10 "$tmp/qemu.log"
	exit 1
fi
tr -d '\r' <"$tmp/console.log" | grep -q '^GREETING=Hello$'
tr -d '\r' <"$tmp/console.log" | grep -q '^cloister-init: app exited: status=3$' ||
	{ echo "no exit status line"; exit 1; }
[ "$rc" -ne 124 ] || { echo "the enclave did not power off"; exit 1; }
