#!/usr/bin/env bash
# Launch -> init reached: cloister-monitor booting an EIF vs QEMU `microvm` booting the same
# kernel and initramfs (tests/e2e/lib/microvm.sh, the project's reference launch), same memory,
# vCPUs and command line, runs interleaved, timed on this (the parent's) clock. Run where KVM
# works: `tests/e2e/run --bench bench/boot.sh [RUNS]`. Prints the JSON on stdout, which the runner
# writes to bench/results/boot.json (the script's name, like every bench/ script).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-5}
build=$top/build
kdir=$(bash "$top/scripts/fetch-kernel.sh" enclave)
kernel=$(ls "$kdir"/boot/vmlinuz-* | head -1)
work=$build/bench-boot
mkdir -p "$work"
cmdline="console=ttyS0 panic=-1 reboot=k quiet mitigations=off"

bash "$top/tests/e2e/lib/microvm.sh" initramfs --init "$build/tests/e2e/hello-init" \
	--out "$work/initrd.cpio"
"$build/src/cli/cloister" build-eif --kernel "$kernel" --cmdline "$cmdline" \
	--ramdisk "$work/initrd.cpio" --output "$work/boot.eif" >/dev/null

# Enough free 2 MiB hugepages for one 256 MiB enclave.
free=$(cat /sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages)
total=$(cat /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages)
[ "$free" -ge 128 ] || echo $((total + 128 - free)) >/proc/sys/vm/nr_hugepages

/usr/bin/python3 - "$runs" "$work" "$kernel" "$cmdline" "$build/src/vmm/cloister-monitor" \
	"$top/tests/e2e/lib/microvm.sh" <<'PY'
import json, os, statistics, subprocess, sys, time

runs, work, kernel, cmdline, monitor, microvm = sys.argv[1:7]
runs = int(runs)
MARKER = b"CLOISTER-E2E-HELLO: init reached"

def launch(argv):
    """Seconds from spawning argv until the init's marker appears on its stdout."""
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         stdin=subprocess.DEVNULL)
    seen = None
    for line in p.stdout:
        if seen is None and MARKER in line:
            seen = time.monotonic() - t0
    rc = p.wait(timeout=120)
    if seen is None:
        raise SystemExit(f"{argv[0]}: no init marker (exit {rc})")
    return seen, rc

ours_cmd = [monitor, "--eif", f"{work}/boot.eif", "--memory", "256", "--cpu-count", "1",
            "--debug-mode"]
qemu_cmd = ["bash", microvm, "boot", "--kernel", kernel, "--initrd", f"{work}/initrd.cpio",
            "--memory", "256", "--cpus", "1", "--append", cmdline]
ours, theirs = [], []
for i in range(runs):
    # Interleaved, alternating who goes first, so drift in the (shared, nested) machine hits
    # both alike.
    order = [("ours", ours_cmd, ours), ("qemu", qemu_cmd, theirs)]
    if i % 2:
        order.reverse()
    for name, cmd, acc in order:
        s, rc = launch(cmd)
        acc.append(round(s, 3))
        print(f"run {i + 1} {name}: init after {s:.3f} s (exit {rc})", file=sys.stderr)

def cpu_model():
    with open("/proc/cpuinfo") as f:
        for l in f:
            if l.startswith("model name"):
                return l.split(":", 1)[1].strip()
    return "unknown"

in_parent = os.environ.get("CLOISTER_PARENT_INSTANCE") == "1" or not os.path.exists(
    "/sys/module/kvm_pvm") and "hypervisor" in open("/proc/cpuinfo").read()
m_ours, m_theirs = statistics.median(ours), statistics.median(theirs)
res = {
    "name": "boot",
    "what": "launch -> static init prints its marker; Debian 6.12 cloud kernel + the same "
            "initramfs and cmdline, 256 MiB, 1 vCPU; ours: cloister-monitor from an EIF "
            "(host probe included); theirs: QEMU microvm (qboot, rtc=on, acpi=on)",
    "ours": m_ours,
    "theirs": m_theirs,
    "unit": "s",
    "ratio": round(m_ours / m_theirs, 3),
    "goal": 0.5,
    "better": "lower",
    "machine": f"{'parent instance (QEMU TCG L1 with kvm-amd), ' if in_parent else ''}"
               f"{os.cpu_count()} CPUs, {cpu_model()}",
    "runs": {"ours": ours, "theirs": theirs},
    "cmdline": cmdline,
}
print(json.dumps(res, indent=2))
PY
