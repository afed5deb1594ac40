#!/usr/bin/env bash
# P1, launch -> boot heartbeat: cloister-monitor booting an EIF vs QEMU `microvm` with
# vhost-vsock (rtc=on; tests/e2e/lib/microvm.sh, the project's reference launch) booting the
# same kernel and initramfs (tests/e2e/vsock-init: load the vsock modules, send the Nitro
# heartbeat 0xB7 to the parent's port 9000) with the same memory, vCPUs and command line. Runs
# interleaved, alternating who goes first, timed on this (the parent's) clock from spawning the
# process to receiving the heartbeat. Our side also writes its boot timeline (--timeline:
# monitor set-up, kernel, init; docs/benchmarks.md), reported as medians per phase. A third
# series, ours with the kernel cache off (the bzImage decompresses itself in the guest), shows
# what the unpacked boot is worth; the cache is warmed once before the runs, as any earlier
# launch of the same kernel would have. Our vCPU is pinned to the CPU a pool would grant first
# (the last one; never CPU 0, where the host's own work runs), QEMU's floats as usual.
# Run where KVM works: `tests/e2e/run --bench bench/boot.sh [RUNS]` (default 10). Prints the
# JSON on stdout, which the runner writes to bench/results/boot.json.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-10}
. "$top/bench/lib/vsock-image.sh"
bench_vsock_image boot
bench_hugepages 128 || true # the monitor says what is missing

/usr/bin/python3 - "$runs" "$work" "$kernel" "$cmdline" "$build/src/vmm/cloister-monitor" \
	"$top/tests/e2e/lib/microvm.sh" "$top" <<'PY'
import json, os, statistics, sys

runs, work, kernel, cmdline, monitor, microvm, top = sys.argv[1:8]
runs = int(runs)
sys.path.insert(0, os.path.join(top, "bench", "lib"))
import benchlib  # noqa: E402


CACHE = benchlib.kernel_cache_dir()


def ours(cache=CACHE):
    """Seconds from spawning cloister-monitor to its heartbeat; and its boot timeline."""
    timeline, uds = f"{work}/timeline.json", f"{work}/e.vsock"
    argv = [monitor, "--eif", f"{work}/vsock.eif", "--memory", "256", "--cpu-ids",
            str(benchlib.enclave_cpu()),
            "--cid", "16", "--vsock-uds", uds, "--heartbeat-timeout", "120",
            "--timeline", timeline]
    # the log is the last run's, to say why one failed
    p, seconds = benchlib.monitor_boot(argv, f"{work}/monitor.log",
                                       dict(os.environ, CLOISTER_KERNEL_CACHE=cache))
    benchlib.stop([p])
    with open(timeline) as f:
        return seconds, json.load(f)


hb = benchlib.heartbeat_listener()


def theirs():
    """Seconds from spawning QEMU microvm (vhost-vsock) to the heartbeat on AF_VSOCK 9000."""
    return benchlib.qemu_launch(microvm, kernel, f"{work}/initrd.cpio", cmdline, hb)


ours()  # warm the kernel cache (not counted)
o, t, tls, nc = [], [], [], []
for i in range(runs):
    order = ["ours", "qemu", "ours-no-cache"]
    order = order[i % 3:] + order[:i % 3]  # everyone goes first in turn
    for name in order:
        if name == "ours":
            s, tl = ours()
            o.append(round(s, 3))
            tls.append(tl)
        elif name == "ours-no-cache":
            s, _ = ours("off")
            nc.append(round(s, 3))
        else:
            s = theirs()
            t.append(round(s, 3))
        print(f"run {i + 1} {name}: heartbeat after {s:.3f} s", file=sys.stderr)

# Phases of our launch, from the monitor's timeline (ms since exec): its own set-up, the kernel
# (first guest instruction -> init's first boot-timer write), init (-> heartbeat).
def phase(tl, a, b):
    return tl[b] - (tl[a] if a else 0)

phases = {"monitor set-up": (None, "vcpu_run"), "kernel": ("vcpu_run", "init"),
          "init to heartbeat": ("init", "heartbeat")}
timeline = {k: round(statistics.median(phase(tl, a, b) for tl in tls), 1)
            for k, (a, b) in phases.items()}


def spread(xs):
    return {"min": min(xs), "max": max(xs),
            "iqr": round(statistics.quantiles(xs, n=4)[2] - statistics.quantiles(xs, n=4)[0], 3)
            if len(xs) >= 4 else None}


m_o, m_t = statistics.median(o), statistics.median(t)
print(json.dumps({
    "name": "boot",
    "what": "launch -> Nitro boot heartbeat (0xB7 on vsock port 9000); Debian 6.12 cloud "
            "kernel + the same initramfs (tests/e2e/vsock-init) and cmdline, 256 MiB, 1 vCPU; "
            "ours: cloister-monitor from an EIF (host probe included), theirs: QEMU microvm "
            "(qboot, rtc=on, acpi=on) + vhost-vsock",
    "ours": m_o, "theirs": m_t, "unit": "s", "ratio": round(m_o / m_t, 3), "goal": 0.5,
    "better": "lower", "machine": benchlib.machine(), "load_average": benchlib.load_average(),
    "runs": {"ours": o, "theirs": t}, "spread": {"ours": spread(o), "theirs": spread(t)},
    "ours_without_kernel_cache": {"median": statistics.median(nc), "runs": nc,
                                  "what": "ours with CLOISTER_KERNEL_CACHE=off: the guest "
                                          "decompresses its bzImage"},
    "timeline_ms": timeline, "cmdline": cmdline,
}, indent=2))
PY
