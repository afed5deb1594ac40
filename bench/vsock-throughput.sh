#!/usr/bin/env bash
# vsock throughput, enclave <-> parent: cloister-monitor's user-space vsock device vs QEMU
# `microvm` with vhost-vsock (the in-kernel device), booting the same kernel and initramfs
# (tests/e2e/vsock-init: an echo server on vsock port 5000) in the same parent instance.
# Each side: one stream, the parent sends SIZE MiB and reads the echo back concurrently; the
# figure is MiB moved each way per second; median of RUNS, both enclaves up at once and the
# transfers interleaved (this machine is noisy). Run where KVM works:
#   tests/e2e/run --bench bench/vsock-throughput.sh [RUNS] [SIZE_MIB]
# Prints JSON (bench/results/vsock-throughput.json when run through tests/e2e/run).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-5}
size=${2:-64}
. "$top/bench/lib/vsock-image.sh"
bench_vsock_image vsock

bench_hugepages 128 || true # the monitor says what is missing

/usr/bin/python3 - "$runs" "$size" "$work" "$kernel" "$cmdline" \
	"$build/src/vmm/cloister-monitor" "$top/tests/e2e/lib/microvm.sh" "$top" <<'PY'
import json, os, platform, socket, subprocess, sys, time

runs, size, work, kernel, cmdline, monitor, microvm, top = sys.argv[1:9]
runs, size = int(runs), int(size) << 20
CHUNK = 1 << 16

# The echo client and the waits are bench/lib/benchlib.py's, shared with the other benchmarks.
sys.path.insert(0, os.path.join(top, "bench", "lib"))
from benchlib import uds_connect, wait_for  # noqa: E402
from benchlib import transfer as _transfer  # noqa: E402


def transfer(sock):
    """Send `size` bytes while reading the echo; MiB/s each way."""
    return _transfer(sock, size, CHUNK)

def start_ours():
    uds = f"{work}/e.vsock"
    booted = f"{work}/booted"
    open(booted, "w").close()
    fd = os.open(booted, os.O_WRONLY)
    p = subprocess.Popen([monitor, "--eif", f"{work}/vsock.eif", "--memory", "256",
                          "--cpu-count", "1", "--cid", "16", "--vsock-uds", uds,
                          "--heartbeat-timeout", "120", "--booted-fd", str(fd)],
                         pass_fds=(fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(fd)
    wait_for(lambda: "booted" in open(booted).read(), 120, "cloister heartbeat")
    return p, lambda: transfer(uds_connect(uds, 5000))

def start_theirs():
    cid = 17
    hb = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    hb.bind((socket.VMADDR_CID_ANY, 9000))
    hb.listen(1)
    p = subprocess.Popen(["bash", microvm, "boot", "--kernel", kernel, "--initrd",
                          f"{work}/initrd.cpio", "--memory", "256", "--cid", str(cid),
                          "--append", cmdline + " e2e_parent_cid=2"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    hb.settimeout(120)
    c, _ = hb.accept()
    c.sendall(c.recv(1))
    c.close()
    hb.close()
    def run():
        s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
        s.connect((cid, 5000))
        return transfer(s)
    return p, run

# Both enclaves up at once, transfers interleaved: this machine is noisy, and alternating
# exposes both sides to the same noise.
procs = []
try:
    p1, ours_run = start_ours()
    procs.append(p1)
    p2, theirs_run = start_theirs()
    procs.append(p2)
    time.sleep(1)  # the echo servers listen right after the heartbeat
    a_runs, b_runs = [], []
    for _ in range(runs):
        a_runs.append(ours_run())
        b_runs.append(theirs_run())
finally:
    for p in procs:
        p.terminate()
        p.wait(30)
import statistics
a, b = statistics.median(a_runs), statistics.median(b_runs)
print(json.dumps({
    "name": "vsock-throughput",
    "description": f"one stream, parent sends {size >> 20} MiB to an echo server in the enclave "
                   "and reads it back concurrently; median of %d interleaved runs" % runs,
    "runs": {"ours": [round(x, 1) for x in a_runs], "theirs": [round(x, 1) for x in b_runs]},
    "ours": round(a, 1), "theirs": round(b, 1), "unit": "MiB/s",
    "ratio": round(a / b, 3), "goal": 1.0, "better": "higher",
    "ours_what": "cloister-monitor, user-space virtio-vsock (Nitro addressing, CID 3)",
    "theirs_what": "QEMU 10 microvm + vhost-vsock (in-kernel, parent at CID 2)",
    "machine": f"parent instance (QEMU TCG, EPYC+svm) on {platform.node()}, "
               f"{os.cpu_count()} vCPUs",
}, indent=2))
PY
