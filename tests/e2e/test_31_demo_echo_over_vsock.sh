#!/usr/bin/env bash
# The demo app (guest/demo/hello.c) built with `build-enclave --rootfs … --cmd` and booted
# under QEMU microvm with a vhost-vsock device: cloister-init must load the vsock modules from
# the bootstrap ramdisk so the app can listen on vsock port 5000; the parent connects, gets
# its bytes echoed, and asks for an attestation document (none here: QEMU microvm has no NSM,
# so the answer is an empty document). With --once the app then exits 0 and the console shows
# cloister-init's exit line. Skips without /dev/vhost-vsock.
# e2e-timeout: 240
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cli=$top/build/src/cli/cloister
demo=$top/build/guest/demo/cloister-demo-hello
cid=${E2E_DEMO_CID:-43}
[ -x "$cli" ] && [ -x "$demo" ] || { echo "build the project first"; exit 1; }
[ -c /dev/vhost-vsock ] || { echo "no /dev/vhost-vsock here"; exit 77; }

tmp=$(mktemp -d)
qemu=""
cleanup() {
	[ -z "$qemu" ] || kill "$qemu" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
kdir=$(bash "$top/scripts/fetch-kernel.sh" enclave)
"$cli" blobs --kernel-dir "$kdir" --init "$top/build/guest/init/cloister-init" \
	--output "$tmp/blobs" >/dev/null 2>&1
mkdir -p "$tmp/root"
cp "$demo" "$tmp/root/hello"
NITRO_CLI_BLOBS=$tmp/blobs "$cli" build-enclave --rootfs "$tmp/root" --cmd /hello \
	--cmd 5000 --cmd --once --output-file "$tmp/demo.eif" >/dev/null 2>&1

python3 - "$tmp/demo.eif" "$tmp" <<'PY'
import struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack(">H", b[0x1a:0x1c])[0]
offs = struct.unpack(">32Q", b[0x1c:0x11c])
sizes = struct.unpack(">32Q", b[0x11c:0x21c])
rd = []
for i in range(n):
    t = struct.unpack(">H", b[offs[i]:offs[i] + 2])[0]
    data = b[offs[i] + 12:offs[i] + 12 + sizes[i]]
    if t == 1: open(sys.argv[2] + "/kernel", "wb").write(data)
    if t == 2: open(sys.argv[2] + "/cmdline", "wb").write(data)
    if t == 3: rd.append(data)
open(sys.argv[2] + "/initrd", "wb").write(b"".join(rd))
PY

timeout 120 bash "$top/tests/e2e/lib/microvm.sh" boot --kernel "$tmp/kernel" \
	--initrd "$tmp/initrd" --cid "$cid" \
	--append "$(cat "$tmp/cmdline") cloister.heartbeat=0 cloister.exit_port=0" \
	>"$tmp/console.log" 2>"$tmp/qemu.log" &
qemu=$!

python3 - "$cid" <<'PY'
import socket, struct, sys, time
cid = int(sys.argv[1])
deadline = time.time() + 90
while True:
    s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    try:
        s.connect((cid, 5000))
        break
    except OSError:
        s.close()
        if time.time() > deadline:
            sys.exit("the demo never listened on vsock port 5000")
        time.sleep(0.5)
s.settimeout(30)
s.sendall(b"hello enclave\n")
got = b""
while len(got) < 14:
    got += s.recv(64)
assert got == b"hello enclave\n", got
s.sendall(b"ATTEST check\n")
hdr = b""
while len(hdr) < 4:
    hdr += s.recv(4 - len(hdr))
n = struct.unpack(">I", hdr)[0]
print("echo ok; attestation document: %d bytes" % n)
s.close()
PY
rc=0
wait "$qemu" || rc=$?
qemu=""
tr -d '\r' <"$tmp/console.log" | grep -E '^(cloister demo|cloister-init)' || true
tr -d '\r' <"$tmp/console.log" | grep -q '^cloister-init: app exited: status=0$' ||
	{ echo "no exit line (QEMU exit $rc)"; tail -20 "$tmp/console.log"; exit 1; }
