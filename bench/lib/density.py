"""The measuring half of bench/density.sh (read its header first): launches N cloister-monitors,
then N QEMU microvms (or the other way round), each batch at once; times launch -> last
heartbeat, terminates them, checks that everything came back; prints one JSON object."""
import argparse
import json
import os
import select
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402

HUGEPAGES = "/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages"
MONITOR_EXIT_TERMINATED = 14  # src/vmm/monitor.h: stopped by SIGTERM
BOOT_TIMEOUT = 900


def free_hugepages():
    with open(HUGEPAGES) as f:
        return int(f.read())


def host_mib(pids):
    """Host memory the VMM processes hold, guest RAM included: Rss + hugetlb pages (hugetlb is
    never in Rss; bench/memory-overhead.sh explains)."""
    total = 0
    for pid in pids:
        try:
            st = benchlib.status_kib(pid)
        except OSError:  # it ended meanwhile; the checks report that
            continue
        total += st.get("VmRSS", 0) + st.get("HugetlbPages", 0)
    return round(total / 1024, 1)


def wait_gone(pred, timeout=10):
    end = time.monotonic() + timeout
    while time.monotonic() < end and not pred():
        time.sleep(0.1)
    return pred()


def round_ours(a, cpus, taskset):
    hp0 = free_hugepages()
    procs, fds, socks = [], {}, []
    t0 = time.monotonic()
    for i in range(a.n):
        r, w = os.pipe()
        uds = f"{a.work}/e{i}.vsock"
        socks.append(uds)
        argv = taskset + benchlib.monitor_argv(a.monitor, f"{a.work}/vsock.eif", a.memory,
                                               cpus[i % len(cpus)], 16 + i, uds, w,
                                               BOOT_TIMEOUT)
        p = subprocess.Popen(argv, pass_fds=(w,), stdout=subprocess.DEVNULL,
                             stderr=open(f"{a.work}/ours{i}.err", "w"))
        os.close(w)
        procs.append(p)
        fds[r] = i
    booted, failed = {}, {}
    try:
        deadline = t0 + BOOT_TIMEOUT
        while fds and time.monotonic() < deadline:
            ready, _, _ = select.select(list(fds), [], [], 1.0)
            for r in ready:
                data = os.read(r, 64)
                i = fds.pop(r)
                os.close(r)
                if b"booted" in data:
                    booted[i] = time.monotonic() - t0
                else:
                    failed[i] = f"exit {procs[i].wait()}"
        for r, i in fds.items():
            os.close(r)
            failed.setdefault(i, "no heartbeat in time")
        mem = host_mib([p.pid for p in procs if p.poll() is None])
        alive = sum(p.poll() is None for p in procs)
    finally:
        t1 = time.monotonic()
        codes = benchlib.stop(procs)
        t_stop = time.monotonic() - t1
    checks = {
        "all_booted": len(booted) == a.n,
        "all_alive_at_last_heartbeat": alive == a.n,
        "all_terminated": all(c == MONITOR_EXIT_TERMINATED for c in codes.values()),
        "hugepages_returned": wait_gone(lambda: free_hugepages() == hp0),
        "sockets_removed": wait_gone(lambda: not any(os.path.exists(s) for s in socks)),
    }
    return {"all_booted_s": max(booted.values()) if booted else None,
            "boot_s": [round(booted[i], 2) for i in sorted(booted)], "failed": failed,
            "terminate_s": round(t_stop, 2), "exit_codes": sorted(codes.values()),
            "host_memory_mib": mem, "checks": checks}


def round_theirs(a, taskset):
    hb = benchlib.heartbeat_listener()
    procs, cids = [], {}
    t0 = time.monotonic()
    for i in range(a.n):
        cid = 100 + i
        argv = taskset + benchlib.qemu_argv(a.microvm, a.kernel, f"{a.work}/initrd.cpio",
                                            a.memory, cid, a.cmdline)
        procs.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                      stderr=open(f"{a.work}/theirs{i}.err", "w")))
        cids[cid] = i
    booted = {}
    try:
        deadline = t0 + BOOT_TIMEOUT
        while len(booted) < a.n and time.monotonic() < deadline:
            if any(p.poll() is not None for p in procs):
                break
            try:
                cid = benchlib.answer_heartbeat(hb, 1.0)
            except (TimeoutError, OSError):
                continue
            if cid in cids:
                booted[cids[cid]] = time.monotonic() - t0
        failed = {i: (f"exit {procs[i].poll()}" if procs[i].poll() is not None
                      else "no heartbeat in time") for i in range(a.n) if i not in booted}
        mem = host_mib([p.pid for p in procs if p.poll() is None])
        alive = sum(p.poll() is None for p in procs)
    finally:
        hb.close()
        t1 = time.monotonic()
        codes = benchlib.stop(procs)
        t_stop = time.monotonic() - t1
    checks = {
        "all_booted": len(booted) == a.n,
        "all_alive_at_last_heartbeat": alive == a.n,
        # QEMU exits 0 on SIGTERM; a CID vhost-vsock did not release would make the next
        # round's QEMU fail to start (all_booted).
        "all_terminated": all(c == 0 for c in codes.values()),
    }
    return {"all_booted_s": max(booted.values()) if booted else None,
            "boot_s": [round(booted[i], 2) for i in sorted(booted)], "failed": failed,
            "terminate_s": round(t_stop, 2), "exit_codes": sorted(codes.values()),
            "host_memory_mib": mem, "checks": checks}


def result(rounds, a, cpus, machine, load_avg):
    """The JSON object from the per-round dicts {"ours": round_ours(), "theirs": ...}. Pure,
    so it is tested without KVM (bench/lib/test_benchlib.py)."""
    def ok(r):
        return all(r["checks"].values())
    ours_runs = [r["ours"]["all_booted_s"] for r in rounds]
    theirs_runs = [r["theirs"]["all_booted_s"] for r in rounds]
    good_o = [x for x in ours_runs if x is not None]
    good_t = [x for x in theirs_runs if x is not None]
    ours = round(statistics.median(good_o), 2) if good_o else None
    theirs = round(statistics.median(good_t), 2) if good_t else None
    checks_ok = all(ok(r["ours"]) for r in rounds)
    return {
        "name": "density",
        "what": f"{a.n} enclaves launched at once in one parent, {a.memory} MiB and 1 vCPU "
                f"each, time from the first launch to the last heartbeat; ours: "
                f"cloister-monitor; theirs: QEMU microvm + vhost-vsock, same kernel and "
                f"initramfs; all must boot, terminate and return hugepages and sockets",
        "ours": ours, "theirs": theirs, "unit": "s",
        "ratio": round(ours / theirs, 3) if ours and theirs else None,
        "goal": 1.0,
        "goal_is": "issue 9 sets no number for P6, only that all boot, terminate and return "
                   "their resources (checks); 1.0 = launching N at once is no slower than N "
                   "QEMU microvms",
        "better": "lower",
        "checks_passed": checks_ok,
        "machine": machine,
        "runs": {"ours": ours_runs, "theirs": theirs_runs},
        "detail": {
            "n": a.n, "memory_mib": a.memory,
            "cpus": f"ours: vCPU of enclave i pinned to CPU {cpus}[i mod {len(cpus)}]; both "
                    f"sides' processes confined to CPUs {cpus} (taskset)",
            "statistic": f"median of {len(rounds)} rounds, sides alternating who goes first",
            "rounds": rounds,
            "load_average": load_avg,
        },
    }


def main():
    ap = argparse.ArgumentParser()
    for x in ("work", "kernel", "cmdline", "monitor", "microvm"):
        ap.add_argument("--" + x, required=True)
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--memory", type=int, default=128)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    ncpu = os.cpu_count()
    cpus = list(range(1, ncpu)) if ncpu > 1 else [0]
    cpuset = ",".join(map(str, cpus))
    taskset = ["taskset", "-c", cpuset]
    rounds = []
    for i in range(a.runs):
        rnd = {}
        order = ["ours", "theirs"] if i % 2 == 0 else ["theirs", "ours"]
        for side in order:
            rnd[side] = (round_ours(a, cpus, taskset) if side == "ours"
                         else round_theirs(a, taskset))
            s = rnd[side]
            print(f"round {i + 1} {side}: all {len(s['boot_s'])}/{a.n} booted after "
                  f"{s['all_booted_s']} s, terminated in {s['terminate_s']} s, "
                  f"checks {s['checks']}, failed {s['failed']}", file=sys.stderr)
        rounds.append(rnd)
    print(json.dumps(result(rounds, a, cpus, benchlib.machine(), benchlib.load_average()),
                     indent=2))


if __name__ == "__main__":
    main()
