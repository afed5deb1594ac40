"""The measuring half of bench/memory-overhead.sh (read its header first): boots cloister-monitor,
the same image through `cloister run-enclave` (with --cli) and QEMU microvm side by side, samples their /proc/PID/smaps idle and during a vsock echo
transfer, prints one JSON object."""
import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402

GOAL_MIB = 4.0


def kib_to_mib(k):
    return round(k / 1024, 2)


def peak(samples, key="overhead_kib"):
    return max(samples, key=lambda s: s[key])


def result(rounds, args, machine, load_avg):
    """The JSON object from the per-round samples. rounds: list of dicts
    {"ours": {"idle": sample, "load": sample, "mibs": x}, "theirs": {...}} where a sample is
    benchlib.vmm_memory()'s dict. Pure, so it is tested without KVM (bench/lib/test_benchlib.py)."""
    def series(side, phase):
        return [kib_to_mib(r[side][phase]["overhead_kib"]) for r in rounds]
    ours_load, theirs_load = series("ours", "load"), series("theirs", "load")
    ours_idle, theirs_idle = series("ours", "idle"), series("theirs", "idle")
    ours, theirs = statistics.median(ours_load), statistics.median(theirs_load)
    idle_o, idle_t = statistics.median(ours_idle), statistics.median(theirs_idle)
    last = rounds[-1]
    nitro = {}
    if all("nitro" in r for r in rounds):
        n_load, n_idle = series("nitro", "load"), series("nitro", "idle")
        nitro = {"ours_nitro_cli": {
            "what": "the same enclave started with `cloister run-enclave` (what nitro-cli users "
                    "run): the enclave process, cloister-enclave, with its NSM device",
            "load": statistics.median(n_load), "idle": statistics.median(n_idle),
            "runs": {"load": n_load, "idle": n_idle},
            "goal_met": {"idle": statistics.median(n_idle) <= GOAL_MIB,
                         "load": statistics.median(n_load) <= GOAL_MIB},
            "last_round_peak_under_load_kib": last["nitro"]["load"]}}
        if all("nsmd" in r["nitro"] for r in rounds):
            d_rss = [kib_to_mib(r["nitro"]["nsmd"]["VmRSS"]) for r in rounds]
            nitro["ours_nitro_cli"]["nsm_daemon"] = {
                "what": "cloister-nsmd, the host's NSM (one per user and state directory, "
                        "shared by all its enclaves; src/nsmd): its whole VmRSS, peak of the "
                        "round, while it serves this one enclave",
                "rss_mib": statistics.median(d_rss), "runs": d_rss,
                "enclave_process_plus_daemon_mib":
                    round(statistics.median(n_load) + statistics.median(d_rss), 2),
                "last_round_kib": last["nitro"]["nsmd"]}
    return {
        "name": "memory-overhead",
        "what": f"host memory the VMM process holds beyond guest RAM (sum of smaps Rss minus the "
                f"guest-RAM mapping's Rss), peak while echoing {args.size} MiB over vsock; "
                f"{args.memory} MiB, 1 vCPU, same kernel + vsock-init initramfs; ours: "
                f"cloister-monitor (guest RAM in hugetlb, not in Rss); theirs: QEMU microvm + "
                f"vhost-vsock (guest RAM anonymous; its touched pages subtracted)",
        "ours": ours, "theirs": theirs, "unit": "MiB",
        "ratio": round(ours / theirs, 3) if theirs else None,
        "goal": GOAL_MIB, "goal_is": "absolute: ours <= 4 MiB, idle and under load",
        "better": "lower",
        "machine": machine,
        "runs": {"ours": ours_load, "theirs": theirs_load},
        "idle": {"ours": idle_o, "theirs": idle_t,
                 "ratio": round(idle_o / idle_t, 3) if idle_t else None,
                 "runs": {"ours": ours_idle, "theirs": theirs_idle}},
        "goal_met": {"idle": idle_o <= GOAL_MIB, "load": ours <= GOAL_MIB},
        **nitro,
        "detail": {
            "statistic": f"median of {len(rounds)} rounds; each round's value is the peak of "
                         "its samples (idle: 5 samples; load: every 0.1 s during the transfer)",
            "last_round_peak_under_load_kib": {"ours": last["ours"]["load"],
                                               "theirs": last["theirs"]["load"]},
            "throughput_mibs": {"ours": [round(r["ours"]["mibs"], 1) for r in rounds],
                                "theirs": [round(r["theirs"]["mibs"], 1) for r in rounds]},
            "not_counted": "kernel memory on both sides (KVM, vhost worker and socket "
                           "buffers, page tables)",
            "load_average": load_avg,
        },
    }


class Sampler:
    """Samples one process's memory every `period` s on a thread, until stopped."""

    def __init__(self, pid, guest_mib, period=0.1):
        self.pid, self.guest_mib, self.period = pid, guest_mib, period
        self.samples, self.error = [], None
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while True:
            try:
                self.samples.append(benchlib.measure(self.pid, self.guest_mib))
            except (OSError, ValueError) as e:
                self.error = e
                return
            if self._stop.wait(self.period):
                return

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        if self.error:
            raise SystemExit(f"sampling pid {self.pid}: {self.error}")


def idle_sample(pid, guest_mib):
    samples = []
    for _ in range(5):
        samples.append(benchlib.measure(pid, guest_mib))
        time.sleep(0.2)
    return peak(samples)


def nitro_env(args):
    return dict(os.environ, NITRO_CLI_SOCKETS_PATH=f"{args.work}/nitro/run",
                NITRO_CLI_LOGS_PATH=f"{args.work}/nitro/log", CLOISTER_CA_DIR=f"{args.work}/ca")


def start_nitro(args):
    """A pool of the last CPU and the guest's memory (cloister allocator), then run-enclave;
    the enclave process and how to reach its echo server."""
    env = nitro_env(args)
    os.makedirs(f"{args.work}/nitro", exist_ok=True)
    conf = f"{args.work}/nitro/allocator.yaml"
    with open(conf, "w") as f:
        f.write(f"---\nmemory_mib: {args.memory}\ncpu_pool: {benchlib.enclave_cpu()}\n")
    subprocess.run([args.cli, "allocator", "--config", conf], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    out = subprocess.run([args.cli, "run-enclave", "--eif-path", f"{args.work}/vsock.eif",
                          "--memory", str(args.memory), "--cpu-count", "1"], env=env,
                         check=True, capture_output=True, text=True).stdout
    e = json.loads(out)
    uds = f"{args.work}/nitro/run/{e['EnclaveID']}.vsock"

    class Proc:  # what the sampler needs of it: the pid
        pid = e["ProcessID"]
    return Proc(), lambda: benchlib.uds_connect(uds, 5000)


def nsmd_pid():
    """The one cloister-nsmd running (run-enclave's enclave started it; the raw monitor here
    has no NSM, so starts none); None if there is not exactly one."""
    pids = []
    for d in os.listdir("/proc"):
        try:
            if d.isdigit() and open(f"/proc/{d}/comm").read().strip() == "cloister-nsmd":
                pids.append(int(d))
        except OSError:
            pass
    return pids[0] if len(pids) == 1 else None


def nsmd_sample(pid, before=None):
    """The daemon's status kB fields (VmRSS, RssAnon, RssFile), the larger of now and @before."""
    now = benchlib.status_kib(pid)
    keep = ("VmRSS", "RssAnon", "RssFile")
    if before and before["VmRSS"] >= now.get("VmRSS", 0):
        return before
    return {k: now.get(k, 0) for k in keep}


def main():
    ap = argparse.ArgumentParser()
    for a in ("work", "kernel", "cmdline", "monitor", "microvm"):
        ap.add_argument("--" + a, required=True)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--memory", type=int, default=256)
    ap.add_argument("--cli", help="the cloister CLI: also measure run-enclave's enclave process")
    args = ap.parse_args()
    size = args.size * benchlib.MiB
    cpu = 1 if os.cpu_count() > 1 else 0  # CPU 0 stays with the parent, as in the pool

    procs = []
    sides = {}
    try:
        if args.cli:
            sides["nitro"] = start_nitro(args)
            benchlib.ensure_hugepages(args.memory // 2)  # the pool's are taken now
        # Ours: the raw monitor, heartbeat through its own device, host socket for the echo.
        uds = f"{args.work}/e.vsock"
        r, w = os.pipe()
        ours = subprocess.Popen(
            benchlib.monitor_argv(args.monitor, f"{args.work}/vsock.eif", args.memory, cpu, 16,
                                  uds, w, 300),
            pass_fds=(w,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(ours)
        os.close(w)
        with os.fdopen(r) as f:
            if "booted" not in f.read():
                raise SystemExit(f"cloister-monitor: no heartbeat (exit {ours.wait()})")
        # Theirs: QEMU microvm + vhost-vsock, heartbeat to our listener at CID 2.
        hb = benchlib.heartbeat_listener()
        theirs = subprocess.Popen(
            benchlib.qemu_argv(args.microvm, args.kernel, f"{args.work}/initrd.cpio",
                               args.memory, 17, args.cmdline),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(theirs)
        benchlib.answer_heartbeat(hb, 300)
        hb.close()
        time.sleep(2)  # the echo servers listen right after the heartbeat; then let both settle

        def ours_conn():
            return benchlib.uds_connect(uds, 5000)

        def theirs_conn():
            s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
            s.connect((17, 5000))
            return s

        sides.update({"ours": (ours, ours_conn), "theirs": (theirs, theirs_conn)})
        rounds = []
        for i in range(args.runs):
            rnd = {}
            order = list(sides)
            order = order[i % len(order):] + order[:i % len(order)]
            for side in order:
                p, conn = sides[side]
                daemon = nsmd_pid() if side == "nitro" else None
                nsmd = nsmd_sample(daemon) if daemon else None
                idle = idle_sample(p.pid, args.memory)
                with Sampler(p.pid, args.memory) as smp:
                    mibs = benchlib.transfer(conn(), size)
                rnd[side] = {"idle": idle, "load": peak(smp.samples), "mibs": mibs}
                if daemon:
                    rnd[side]["nsmd"] = nsmd_sample(daemon, nsmd)
                print(f"round {i + 1} {side}: idle {kib_to_mib(idle['overhead_kib'])} MiB, "
                      f"load {kib_to_mib(rnd[side]['load']['overhead_kib'])} MiB, "
                      f"{mibs:.1f} MiB/s", file=sys.stderr)
            rounds.append(rnd)
    finally:
        benchlib.stop(procs)
        if args.cli:
            subprocess.run([args.cli, "terminate-enclave", "--all"], env=nitro_env(args),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    print(json.dumps(result(rounds, args, benchlib.machine(), benchlib.load_average()),
                     indent=2))


if __name__ == "__main__":
    main()
