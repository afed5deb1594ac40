#!/usr/bin/env bash
# Where the guest kernel's boot time goes, cloister-monitor vs QEMU microvm (the P1 comparison,
# bench/boot.sh): the same kernel, initramfs (tests/e2e/vsock-init) and command line plus
# `initcall_debug`, booted RUNS times per side (interleaved). After the heartbeat the kernel log
# is fetched over vsock (vsock-init's control port 5001, "dmesg"), so no console output slows the
# boot. Reported per side, medians over the runs, from the kernel's own timestamps:
#   - milestones: when the kernel started init, and what came before;
#   - the slowest initcalls ("initcall X returned 0 after N usecs");
#   - the longest gaps between consecutive log lines (time no initcall accounts for, e.g. SMP
#     bring-up, clock calibration), named by the line that ends them;
#   - launch -> heartbeat on this (the parent's) clock, so the kernel's share of the whole launch
#     comes from the same runs: the floor under the P1 ratio for this kernel.
# Run where KVM works: `tests/e2e/run --bench bench/boot-profile.sh [RUNS]` (default 3).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-3}
. "$top/bench/lib/vsock-image.sh"
bench_vsock_image boot-profile " initcall_debug log_buf_len=4M"
bench_hugepages 128 || true # the monitor says what is missing

/usr/bin/python3 - "$runs" "$work" "$kernel" "$cmdline" "$build/src/vmm/cloister-monitor" \
	"$top/tests/e2e/lib/microvm.sh" "$top" <<'PY'
import json, os, re, socket, statistics, sys

runs, work, kernel, cmdline, monitor, microvm, top = sys.argv[1:8]
runs = int(runs)
sys.path.insert(0, os.path.join(top, "bench", "lib"))
import benchlib  # noqa: E402


def read_all(s):
    out = b""
    s.settimeout(60)
    while True:
        b = s.recv(1 << 16)
        if not b:
            return out.decode(errors="replace")
        out += b


def dmesg(s):
    s.sendall(b"dmesg")
    s.shutdown(socket.SHUT_WR)
    return read_all(s)


CACHE = benchlib.kernel_cache_dir()


def ours():
    uds = f"{work}/e.vsock"
    argv = benchlib.monitor_argv(monitor, f"{work}/vsock.eif", 256, benchlib.enclave_cpu(), 16,
                                 uds, timeout=300)
    p, launch = benchlib.monitor_boot(argv, f"{work}/monitor.log",
                                      dict(os.environ, CLOISTER_KERNEL_CACHE=CACHE), 300)
    log = dmesg(benchlib.retry(lambda: benchlib.uds_connect(uds, 5001)))
    benchlib.stop([p])
    return launch, log


hb = benchlib.heartbeat_listener()


def theirs():
    p, launch = benchlib.qemu_boot(microvm, kernel, f"{work}/initrd.cpio", 256, 17, cmdline, hb,
                                   300)

    def connect():
        s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
        s.settimeout(60)
        try:
            s.connect((17, 5001))
        except OSError:
            s.close()
            raise
        return s
    log = dmesg(benchlib.retry(connect))
    benchlib.stop([p])
    return launch, log


LINE = re.compile(r"^<\d+>\[\s*(\d+\.\d+)\] (.*)$")
CALL = re.compile(r"initcall (\S+) returned -?\d+ after (\d+) usecs")


def parse(log):
    """(milestones, {initcall: ms}, [(gap ms, line that ends it)])"""
    lines = [(float(m.group(1)) * 1000, m.group(2)) for m in map(LINE.match, log.splitlines())
             if m]
    calls, gaps, marks = {}, [], {}
    for (t0, _), (t1, text) in zip(lines, lines[1:]):
        gaps.append((t1 - t0, re.sub(r"\d+", "N", text)[:90]))
    for t, text in lines:
        c = CALL.search(text)
        if c:
            calls[c.group(1)] = int(c.group(2)) / 1000
        if text.startswith("Run /init") and "init" not in marks:
            marks["init"] = t
        if text.startswith("Freeing unused kernel image") and "free" not in marks:
            marks["free"] = t
        if text.startswith("smp: Brought up") and "smp" not in marks:
            marks["smp"] = t
    marks["initcalls_total"] = sum(calls.values())
    return marks, calls, gaps


def summarise(runs):
    parsed = [parse(log) for _, log in runs]
    marks = {k: round(statistics.median(p[0].get(k, 0) for p in parsed), 1)
             for k in ("smp", "free", "init", "initcalls_total")}
    marks["launch_to_heartbeat"] = round(statistics.median(1000 * s for s, _ in runs), 1)
    names = set().union(*(p[1] for p in parsed))
    calls = {n: round(statistics.median(p[1].get(n, 0) for p in parsed), 2) for n in names}
    gaps = {}
    for p in parsed:
        for ms, text in p[2]:
            gaps.setdefault(text, []).append(ms)
    gaps = {t: round(statistics.median(v + [0] * (len(parsed) - len(v))), 1)
            for t, v in gaps.items()}
    return marks, calls, gaps


ours()  # warm the kernel cache (not counted), as bench/boot.sh does
o, t = [], []
for i in range(runs):
    for name in (["ours", "qemu"] if i % 2 == 0 else ["qemu", "ours"]):
        (o if name == "ours" else t).append(ours() if name == "ours" else theirs())
        s, log = (o if name == "ours" else t)[-1]
        print(f"run {i + 1} {name}: heartbeat after {s:.3f} s, kernel log of {len(log)} bytes",
              file=sys.stderr)
for name, r in (("ours", o), ("qemu", t)):
    with open(f"{work}/dmesg-{name}.txt", "w") as f:
        f.write(r[-1][1])

mo, co, go = summarise(o)
mt, ct, gt = summarise(t)
top_calls = sorted(set(co) | set(ct), key=lambda n: -max(co.get(n, 0), ct.get(n, 0)))[:25]
top_gaps = sorted(set(go) | set(gt), key=lambda n: -max(go.get(n, 0), gt.get(n, 0)))[:15]
print(json.dumps({
    "name": "boot-profile",
    "what": "guest kernel time from its first timestamp to starting /init (kernel clock, ms), "
            "cloister-monitor vs QEMU microvm, same kernel, initramfs and cmdline + "
            "initcall_debug; 256 MiB, 1 vCPU; median of the runs",
    "ours": mo["init"], "theirs": mt["init"], "unit": "ms",
    "ratio": round(mo["init"] / mt["init"], 3), "goal": None, "better": "lower",
    "kernel_share_of_their_launch": round(mt["init"] / mt["launch_to_heartbeat"], 3),
    "machine": benchlib.machine(), "load_average": benchlib.load_average(),
    "runs_per_side": runs,
    "milestones_ms": {"ours": mo, "theirs": mt},
    "initcalls_ms": [{"initcall": n, "ours": co.get(n), "theirs": ct.get(n)} for n in top_calls],
    "gaps_ms": [{"ended_by": n, "ours": go.get(n), "theirs": gt.get(n)} for n in top_gaps],
    "cmdline": cmdline,
}, indent=2))
PY
