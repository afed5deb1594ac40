#!/usr/bin/env bash
# Where P1's wall time goes, both sides, from the parent's KVM: every VM exit of the boot is a
# trace event (kvm:kvm_exit, kvm_entry, kvm_pio, kvm_userspace_exit) with a timestamp and the
# guest's RIP. From them, per launch:
# * phases, on the boot vCPU's thread: spawn -> its first exit (the VMM starting and setting
#   up; ours includes the host probe), -> its first exit at a kernel virtual address (QEMU:
#   qboot and the bzImage decompressor; both: the kernel's first steps at physical
#   addresses), -> its first exit in user space (the kernel), -> the heartbeat;
# * exit handling: from each exit to the next entry, by kind (reason; port for port I/O;
#   "(user)" when it went out to the VMM process);
# * where the guest was: the time from each entry to the next exit, charged to the function
#   that exit's RIP is in (symbols from the guest's own /proc/kallsyms, so `nokaslr` is added
#   to the P1 command line here); the host's timer interrupts make this a sampling profile;
# * stalls: nested page faults that took over 2 ms to handle, with the 2 MiB page and the
#   guest function that touched it.
# ours/theirs: launch -> the kernel running at its own addresses, what a VMM controls. One VM
# at a time, so the trace is that VM's. Run where KVM works:
#   tests/e2e/run --bench bench/boot-trace.sh [RUNS]      (default 3 per side; JSON on stdout)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-3}
. "$top/bench/lib/vsock-image.sh"
bench_vsock_image boot-trace " nokaslr"
bench_hugepages 128 || true
T=/sys/kernel/tracing
[ -d $T/events/kvm ] || mount -t tracefs nodev $T 2>/dev/null || true
[ -d $T/events/kvm/kvm_entry ] || {
	echo "boot-trace: no kvm trace events under $T (tracefs and KVM's tracepoints needed)" >&2
	exit 1
}

exec /usr/bin/python3 - "$runs" "$work" "$kernel" "$cmdline" "$build/src/vmm/cloister-monitor" \
	"$top" "$T" <<'PY'
import bisect, collections, json, os, re, statistics, sys, time

runs, work, kernel, cmdline, monitor, top, T = sys.argv[1:8]
runs = int(runs)
sys.path.insert(0, os.path.join(top, "bench", "lib"))
import benchlib  # noqa: E402

EVENTS = ("kvm_exit", "kvm_entry", "kvm_pio", "kvm_userspace_exit")
KERNEL_VA = 0xffffffff80000000
USER_TOP = 0x800000000000
STALL_US = 2000


def tracefs(path, value):
    with open(f"{T}/{path}", "w") as f:
        f.write(value)


tracefs("tracing_on", "0")
tracefs("trace_clock", "mono")  # CLOCK_MONOTONIC, as time.monotonic()
tracefs("buffer_size_kb", "65536")
for e in EVENTS:
    tracefs(f"events/kvm/{e}/enable", "1")

cache = benchlib.kernel_cache_dir()
env = dict(os.environ, CLOISTER_KERNEL_CACHE=cache)
argv = benchlib.monitor_argv(monitor, f"{work}/vsock.eif", 256, benchlib.enclave_cpu(), 16,
                             f"{work}/e.vsock")

# One launch first: it fills the kernel cache (as any earlier launch on a host has), and its
# guest tells us its symbols (tests/e2e/vsock-init.c, control port 5001).
p, _ = benchlib.monitor_boot(argv, f"{work}/warm.log", env)
c = benchlib.retry(lambda: benchlib.uds_connect(f"{work}/e.vsock", 5001))
c.sendall(b"kallsyms")
raw = b""
while True:
    b = c.recv(1 << 16)
    if not b:
        break
    raw += b
benchlib.stop([p])
syms = sorted((int(f[0], 16), f[2]) for f in (l.split() for l in raw.decode().splitlines())
              if len(f) >= 3 and f[1] in "tTwW" and int(f[0], 16))
if len(syms) < 1000:
    raise SystemExit(f"boot-trace: only {len(syms)} symbols from the guest's /proc/kallsyms")
addrs = [a for a, _ in syms]
# Before it switches to its own page tables, the kernel runs at its physical addresses
# (loaded at 16 MiB; nokaslr): map those back to the symbols too.
PHYS_OFFSET = 0xffffffff81000000 - 0x1000000


def where(rip):
    if rip < USER_TOP:
        if 0x1000000 <= rip < 0x8000000:
            rip += PHYS_OFFSET
        else:
            return "firmware/decompressor" if rip < 0x1000000 else "user space"
    i = bisect.bisect_right(addrs, rip) - 1
    return syms[i][1] if i >= 0 and rip - addrs[i] < 1 << 20 else "module"


def traced(launch):
    tracefs("trace", "")
    tracefs("tracing_on", "1")
    t0 = time.monotonic()
    secs = launch()
    tracefs("tracing_on", "0")
    ev = []
    with open(f"{T}/trace") as f:
        for line in f:
            if "LOST" in line:
                raise SystemExit("boot-trace: the trace buffer overflowed")
            m = re.search(r"-(\d+)\s+\[\d+\].*?\s(\d+\.\d+): (\w+): (.*)", line)
            if m:
                ev.append((int(m.group(1)), float(m.group(2)) - t0, m.group(3), m.group(4)))
    # The boot vCPU is the thread with the most exits: cloister-monitor's host probe runs a
    # VM of its own on the main thread first, whose exits are not the guest's.
    tids = collections.Counter(tid for tid, _, k, _ in ev if k == "kvm_exit")
    vcpu = tids.most_common(1)[0][0]
    return secs, [(t, k, b) for tid, t, k, b in ev if tid == vcpu]


def rip_of(body):
    m = re.search(r"rip 0x([0-9a-f]+)", body)
    return int(m.group(1), 16) if m else None


def analyse(secs, ev):
    exits = [(t, b) for t, k, b in ev if k == "kvm_exit"]
    first = exits[0][0]
    kstart = next(t for t, b in exits if (rip_of(b) or 0) >= KERNEL_VA)
    user = next(t for t, b in exits if t > kstart and (rip_of(b) or USER_TOP) < USER_TOP)
    phases = {"VMM start and set-up": first, "firmware, decompressor, early kernel":
              kstart - first, "kernel": user - kstart, "user space to heartbeat": secs - user}
    cost = collections.defaultdict(lambda: [0, 0.0])
    stalls = []
    pending = None
    for t, k, b in ev:
        if k == "kvm_exit":
            r = re.search(r"reason (\w+)", b)
            pending = {"t": t, "kind": r.group(1) if r else "?", "body": b, "user": False}
        elif pending and k == "kvm_pio":
            r = re.search(r"at (0x[0-9a-f]+)", b)
            pending["kind"] = "io " + (r.group(1) if r else "?")
        elif pending and k == "kvm_userspace_exit":
            pending["user"] = True
        elif pending and k == "kvm_entry":
            kind = pending["kind"] + (" (user)" if pending["user"] else "")
            cost[kind][0] += 1
            cost[kind][1] += t - pending["t"]
            us = (t - pending["t"]) * 1e6
            if pending["kind"] == "npf" and not pending["user"] and us > STALL_US:
                g = re.search(r"info2 0x([0-9a-f]+)", pending["body"])
                stalls.append({"at_s": round(pending["t"], 3), "ms": round(us / 1000, 1),
                               "page_mib": (int(g.group(1), 16) >> 21) * 2 if g else None,
                               "function": where(rip_of(pending["body"]) or 0)})
            pending = None
    # Guest time: from each entry to the next exit, charged to where that exit found it.
    prof = collections.defaultdict(collections.Counter)
    entered = None
    for t, k, b in ev:
        if k == "kvm_entry":
            entered = t
        elif k == "kvm_exit" and entered is not None:
            ph = "kernel" if kstart <= t < user else ("before" if t < kstart else "after")
            prof[ph][where(rip_of(b) or 0)] += t - entered
            entered = None
    return {"seconds": round(secs, 3), "exits": len(exits),
            "phases_s": {k: round(v, 3) for k, v in phases.items()},
            "exit_handling_s": {k: [n, round(s, 4)] for k, (n, s) in
                                sorted(cost.items(), key=lambda x: -x[1][1])[:25]},
            "stalls": stalls,
            "kernel_profile_s": {f: round(s, 3) for f, s in prof["kernel"].most_common(30)}}


hb = benchlib.heartbeat_listener()
microvm = os.path.join(top, "tests/e2e/lib/microvm.sh")


def ours():
    p, s = benchlib.monitor_boot(argv, f"{work}/monitor.log", env)
    benchlib.stop([p])
    return s


def theirs():
    return benchlib.qemu_launch(microvm, kernel, f"{work}/initrd.cpio", cmdline, hb)


per = {"ours": [], "theirs": []}
for i in range(runs):
    order = [("ours", ours), ("theirs", theirs)]
    for side, launch in (order if i % 2 == 0 else order[::-1]):
        per[side].append(analyse(*traced(launch)))
        print(f"boot-trace: run {i + 1} {side}: {per[side][-1]['phases_s']}", file=sys.stderr)
for e in EVENTS:
    tracefs(f"events/kvm/{e}/enable", "0")


def med(side, key, sub=None):
    return round(statistics.median(r[key][sub] if sub else r[key] for r in per[side]), 3)


def merged(side, key):
    total = collections.Counter()
    for r in per[side]:
        for k, v in r[key].items():
            total[k] += (v[1] if isinstance(v, list) else v) / len(per[side])
    return {k: round(v, 4) for k, v in total.most_common(15)}


def to_kernel(side):
    return med(side, "phases_s", "VMM start and set-up") + \
        med(side, "phases_s", "firmware, decompressor, early kernel")


ours_s, theirs_s = to_kernel("ours"), to_kernel("theirs")
print(json.dumps({
    "name": "boot-trace",
    "what": "launch -> the guest kernel running at its own addresses (the VMM's start and "
            "set-up, then QEMU: qboot and the bzImage decompressor; both: the kernel's first "
            "steps at physical addresses), from the parent KVM's exit trace of the P1 boot "
            "(+ nokaslr); median seconds; the rest of the boot by phase",
    "ours": round(ours_s, 3), "theirs": round(theirs_s, 3), "unit": "s",
    "ratio": round(ours_s / theirs_s, 3), "goal": None, "better": "lower",
    "machine": benchlib.machine(), "load_average": benchlib.load_average(),
    "runs_per_side": runs, "cmdline": cmdline,
    "phases_s": {side: {k: med(side, "phases_s", k) for k in per[side][0]["phases_s"]}
                 for side in per},
    "launch_s": {side: [r["seconds"] for r in per[side]] for side in per},
    "exit_handling_s": {side: merged(side, "exit_handling_s") for side in per},
    "kernel_profile_s": {side: merged(side, "kernel_profile_s") for side in per},
    "stalls": {side: [r["stalls"] for r in per[side]] for side in per},
    "stall_s": {side: [round(sum(s["ms"] for s in r["stalls"]) / 1000, 3) for r in per[side]]
                for side in per},
}, indent=2))
PY
