#!/usr/bin/env bash
# VM exits during the P1 boot (launch -> heartbeat), cloister-monitor vs QEMU microvm, counted
# by the parent's KVM (tracefs hist triggers on kvm:kvm_exit, kvm_pio, kvm_mmio, kvm_msr). An
# exit is the expensive thing a monitor can change about a guest's boot; where exits are
# slow (nested virtualization) their count bounds the launch time. One VM at a time, so the
# global counts are that VM's. Run where KVM works: `tests/e2e/run --bench bench/boot-exits.sh
# [RUNS]` (default 1 run per side). Prints JSON on stdout.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-1}
. "$top/bench/lib/vsock-image.sh"
bench_vsock_image boot-exits
bench_hugepages 128 || true
T=/sys/kernel/tracing
[ -d $T/events/kvm ] || mount -t tracefs nodev $T 2>/dev/null || true
[ -d $T/events/kvm ] || {
	echo "boot-exits: no kvm trace events under $T (tracefs with CONFIG_HIST_TRIGGERS needed)" >&2
	exit 1
}

/usr/bin/python3 - "$runs" "$work" "$kernel" "$cmdline" "$build/src/vmm/cloister-monitor" \
	"$top/tests/e2e/lib/microvm.sh" "$top" "$T" <<'PY'
import json, os, re, statistics, sys

runs, work, kernel, cmdline, monitor, microvm, top, T = sys.argv[1:9]
runs = int(runs)
sys.path.insert(0, os.path.join(top, "bench", "lib"))
import benchlib  # noqa: E402

HISTS = {"kvm_exit": "exit_reason", "kvm_pio": "port", "kvm_mmio": "gpa", "kvm_msr": "ecx"}


def trig(event, on):
    spec = f"hist:keys={HISTS[event]}:vals=hitcount:sort=hitcount.descending:size=2048"
    with open(f"{T}/events/kvm/{event}/trigger", "w") as f:
        f.write(spec if on else "!" + spec.split(":sort")[0])


def read(event):
    out = {}
    for line in open(f"{T}/events/kvm/{event}/hist"):
        m = re.match(r"\{\s*(\w+):\s*(\S+?)\s*(?:\[.*\])?\s*\}\s*hitcount:\s*(\d+)", line)
        if m:
            out[m.group(2)] = int(m.group(3))
    return out


def counted(run):
    for e in HISTS:
        trig(e, True)
    try:
        seconds = run()
        return seconds, {e: read(e) for e in HISTS}
    finally:
        for e in HISTS:
            trig(e, False)


CACHE = benchlib.kernel_cache_dir()


def ours():
    uds = f"{work}/e.vsock"
    argv = [monitor, "--eif", f"{work}/vsock.eif", "--memory", "256", "--cpu-ids",
            str(benchlib.enclave_cpu()), "--cid", "16", "--vsock-uds", uds,
            "--heartbeat-timeout", "120", "--log", "debug"]
    p, seconds = benchlib.monitor_boot(argv, f"{work}/monitor.log",
                                       dict(os.environ, CLOISTER_KERNEL_CACHE=CACHE))
    benchlib.stop([p])
    return seconds


hb = benchlib.heartbeat_listener()


def theirs():
    """Seconds from spawning QEMU microvm (vhost-vsock) to the heartbeat on AF_VSOCK 9000."""
    return benchlib.qemu_launch(microvm, kernel, f"{work}/initrd.cpio", cmdline, hb)


# Exit codes by name: SVM's (AMD, the parent instance) and VMX's (Intel) most common ones.
SVM = {0x0: "cr0_read", 0x10: "cr0_write", 0x13: "cr3_write", 0x14: "cr4_write",
       0x60: "intr", 0x61: "nmi", 0x64: "vintr", 0x65: "cr0_sel_write", 0x72: "cpuid",
       0x78: "hlt", 0x7b: "ioio", 0x7c: "msr", 0x7f: "shutdown", 0x81: "vmmcall", 0x8d: "xsetbv",
       0x400: "npf", 0x401: "avic_incomplete_ipi", 0x402: "avic_unaccelerated_access"}
VMX = {1: "external_interrupt", 7: "interrupt_window", 10: "cpuid", 12: "hlt", 28: "cr_access",
       30: "io_instruction", 31: "msr_read", 32: "msr_write", 44: "apic_access",
       45: "eoi_induced", 48: "ept_violation", 49: "ept_misconfig", 55: "xsetbv"}
names = SVM if "AuthenticAMD" in open("/proc/cpuinfo").read() else VMX


def named(hist):
    return {names.get(int(k), k): v for k, v in hist.items()}


ours()  # warm the kernel cache
detail = []
for i in range(runs):
    for name, fn in (("ours", ours), ("theirs", theirs)):
        seconds, hists = counted(fn)
        hists["kvm_exit"] = named(hists["kvm_exit"])
        detail.append({"side": name, "seconds": round(seconds, 3),
                       "exits": sum(hists["kvm_exit"].values()), **hists})
        if name == "ours":
            detail[-1]["monitor_log"] = [l for l in open(f"{work}/monitor.log").read()
                                         .splitlines() if "debug:" in l or "info:" in l]
med = {side: statistics.median(r["exits"] for r in detail if r["side"] == side)
       for side in ("ours", "theirs")}
json.dump({"name": "boot-exits",
           "what": "VM exits from launch to the heartbeat (the parent's KVM, tracefs), "
                   "cloister-monitor vs QEMU microvm, the P1 boot; median of the runs; "
                   "per exit reason, I/O port, MMIO address and MSR in the runs",
           "ours": med["ours"], "theirs": med["theirs"], "unit": "exits",
           "ratio": round(med["ours"] / med["theirs"], 3), "goal": None, "better": "lower",
           "machine": benchlib.machine(), "runs_per_side": runs,
           "runs": {side: [r["exits"] for r in detail if r["side"] == side]
                    for side in ("ours", "theirs")},
           "detail": detail},
          sys.stdout, indent=1)
print()
PY
