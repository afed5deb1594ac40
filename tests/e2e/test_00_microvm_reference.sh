#!/usr/bin/env bash
# The reference boot (before cloister's own monitor exists, and the yardstick after): the Debian
# cloud kernel with a tiny static init (tests/e2e/hello-init.c) under QEMU microvm + KVM, launched
# by tests/e2e/lib/microvm.sh exactly as bench/ does. Must-have: the init's marker on the console.
# Reference only (printed, not required): the 0xB7 heartbeat over vhost-vsock to CID 2.
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"
microvm=$E2E_TOP/tests/e2e/lib/microvm.sh
init=$(e2e_need_built tests/e2e/hello-init)
cid=${E2E_MICROVM_CID:-42}
kdir=$(e2e_enclave_kernel_dir)
kernel=$(e2e_enclave_kernel)

tmp=$(mktemp -d)
listener=""
cleanup() {
	[ -z "$listener" ] || kill "$listener" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

bash "$microvm" initramfs --init "$init" --out "$tmp/initrd.cpio" --vsock-modules "$kdir"

# The parent side of the heartbeat: accept one vsock connection on port 9000, answer 0xB7.
python3 - "$tmp/heartbeat" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
s.bind((socket.VMADDR_CID_ANY, 9000))
s.listen(1)
open(sys.argv[1] + ".ready", "w").close()
s.settimeout(60)
c, addr = s.accept()
b = c.recv(1)
c.sendall(b"\xb7")
open(sys.argv[1], "w").write("cid %d sent 0x%s\n" % (addr[0], b.hex()))
PY
listener=$!
# Python starts slowly from a cold 9p cache in the parent instance: wait until it listens.
for _ in $(seq 100); do
	[ -e "$tmp/heartbeat.ready" ] && break
	sleep 0.1
done

start=$(date +%s%N)
rc=0
timeout 120 bash "$microvm" boot --kernel "$kernel" --initrd "$tmp/initrd.cpio" --cid "$cid" \
	>"$tmp/console.log" 2>"$tmp/qemu.log" || rc=$?
end=$(date +%s%N)
ms=$(((end - start) / 1000000))

if ! grep -q 'CLOISTER-E2E-HELLO: init reached' "$tmp/console.log"; then
	echo "no init marker on the console (QEMU exit $rc after $ms ms)"
	echo "--- console"; tail -40 "$tmp/console.log"
	echo "--- qemu"; tail -20 "$tmp/qemu.log"
	exit 1
fi
grep 'CLOISTER-E2E-HELLO' "$tmp/console.log" | tr -d '\r'
if [ "$rc" -ne 0 ]; then
	echo "QEMU exited with $rc after the marker (expected a clean power-off)"
	exit 1
fi
echo "launch to power-off: $ms ms (QEMU microvm, cloud kernel, 256 MiB, 1 vCPU)"
if [ -s "$tmp/heartbeat" ]; then
	echo "heartbeat (reference): parent side saw $(cat "$tmp/heartbeat")"
else
	echo "heartbeat (reference, not required): the parent side received nothing"
fi
