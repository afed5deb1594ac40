"""Helpers shared by the Python halves of bench/*.sh (memory-overhead, density): where we run,
how much memory a VMM process holds, launching cloister-monitor and QEMU microvm the way the
other benchmarks do, and vsock echo transfers. Standard library only (runs in the parent
instance with Debian's python3)."""
import os
import select
import socket
import subprocess
import tempfile
import threading
import time

MiB = 1 << 20


def cpu_model():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown"


def machine():
    """CPU model, cores, and whether this ran in the parent instance or directly on a host."""
    if os.environ.get("CLOISTER_PARENT_INSTANCE") == "1":
        where = "parent instance (QEMU TCG L1 with kvm-amd)"
    else:
        where = "direct"
    return f"{cpu_model()}, {os.cpu_count()} CPUs, {where}"


def load_average():
    return [round(x, 2) for x in os.getloadavg()]


def status_kib(pid):
    """The kB fields of /proc/PID/status (VmRSS, RssAnon, RssFile, HugetlbPages, ...)."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            v = v.split()
            if len(v) == 2 and v[1] == "kB":
                out[k] = int(v[0])
    return out


def parse_smaps(text):
    """/proc/PID/smaps text -> a list of mappings: dict(start, end, perms, path, and every
    'Key: N kB' field)."""
    maps = []
    cur = None
    for line in text.splitlines():
        head = line.split(None, 5)
        if head and "-" in head[0] and len(head) >= 5 and not head[0].endswith(":"):
            start, end = head[0].split("-")
            cur = {"start": int(start, 16), "end": int(end, 16), "perms": head[1],
                   "path": head[5] if len(head) > 5 else ""}
            maps.append(cur)
        elif cur is not None and line.endswith(" kB"):
            k, _, v = line.partition(":")
            cur[k] = int(v.split()[0])
    return maps


def vmm_memory(maps, guest_mib, status=None):
    """Host memory of one VMM process beyond its guest's RAM, in KiB (see the header of
    bench/memory-overhead.sh). The guest-RAM mapping is the one mapping whose size is the guest's
    RAM, up to 4 MiB more (QEMU aligns and adds a guard page; ours is exact): hugetlb (ours) or
    anonymous read-write without a path (QEMU). Raises ValueError if there is not exactly one."""
    gkib = guest_mib * 1024

    def is_guest(m):
        size = (m["end"] - m["start"]) // 1024
        if not gkib <= size <= gkib + 4096 or not m["perms"].startswith("rw"):
            return False
        huge = m.get("Private_Hugetlb", 0) + m.get("Shared_Hugetlb", 0)
        return huge > 0 or m["path"] in ("", "[anon]") or m["path"].startswith("[anon:")

    def hugetlb(m):
        return m.get("Private_Hugetlb", 0) + m.get("Shared_Hugetlb", 0)

    guest = [m for m in maps if is_guest(m)]
    if len(guest) != 1:
        # run-enclave's enclave process maps guest RAM as nitro-cli does, in several hugetlb
        # regions (docs/resources.md); together they are the guest's RAM, never in Rss.
        regions = [m for m in maps if hugetlb(m) > 0 and m["perms"].startswith("rw")]
        if not guest and sum(hugetlb(m) for m in regions) == gkib:
            guest = [{"Rss": sum(m.get("Rss", 0) for m in regions),
                      "Pss": sum(m.get("Pss", 0) for m in regions),
                      "Private_Hugetlb": sum(hugetlb(m) for m in regions)}]
        else:
            raise ValueError(f"expected one {guest_mib} MiB guest-RAM mapping, found "
                             f"{len(guest)}")
    g = guest[0]
    rss = sum(m.get("Rss", 0) for m in maps)
    pss = sum(m.get("Pss", 0) for m in maps)
    huge = sum(m.get("Private_Hugetlb", 0) + m.get("Shared_Hugetlb", 0) for m in maps)
    out = {
        "overhead_kib": rss - g.get("Rss", 0),
        "overhead_pss_kib": pss - g.get("Pss", 0),
        "rss_kib": rss,
        "guest_rss_kib": g.get("Rss", 0),
        "guest_hugetlb_kib": g.get("Private_Hugetlb", 0) + g.get("Shared_Hugetlb", 0),
        "hugetlb_kib": huge,
    }
    if status:
        out.update({"VmRSS_kib": status.get("VmRSS"), "RssAnon_kib": status.get("RssAnon"),
                    "RssFile_kib": status.get("RssFile"),
                    "HugetlbPages_kib": status.get("HugetlbPages")})
    return out


def measure(pid, guest_mib):
    with open(f"/proc/{pid}/smaps") as f:
        text = f.read()
    return vmm_memory(parse_smaps(text), guest_mib, status_kib(pid))


def wait_for(pred, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.05)
    raise SystemExit(f"timed out waiting for {what}")


def uds_connect(path, port):
    """Connect to an enclave port through cloister's host socket (docs/vsock.md)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    s.sendall(f"CONNECT {port}\n".encode())
    line = b""
    while not line.endswith(b"\n"):
        b = s.recv(1)
        if not b:
            break
        line += b
    if not line.startswith(b"OK"):
        raise SystemExit("enclave refused the connection")
    return s


def transfer(sock, size, chunk=1 << 16):
    """Send `size` bytes to the echo server while reading the echo; MiB/s each way."""
    data = os.urandom(chunk)
    got = [0]

    def reader():
        while got[0] < size:
            b = sock.recv(1 << 20)
            if not b:
                break
            got[0] += len(b)
    t = threading.Thread(target=reader)
    t0 = time.monotonic()
    t.start()
    for _ in range(size // chunk):
        sock.sendall(data)
    t.join(300)
    dt = time.monotonic() - t0
    sock.close()
    if got[0] != size:
        raise SystemExit(f"echo returned {got[0]} of {size} bytes")
    return (size / MiB) / dt


def ensure_hugepages(pages):
    """At least `pages` free 2 MiB hugepages, reserving more if needed (bench_hugepages in
    bench/lib/vsock-image.sh, for a Python caller that took some since)."""
    hp = "/sys/kernel/mm/hugepages/hugepages-2048kB"
    with open(f"{hp}/free_hugepages") as f:
        free = int(f.read())
    if free < pages:
        with open(f"{hp}/nr_hugepages") as f:
            total = int(f.read())
        with open("/proc/sys/vm/nr_hugepages", "w") as f:
            f.write(str(total + pages - free))


def enclave_cpu():
    """The CPU an enclave pool would grant first here: the last one, never CPU 0 (which keeps
    the host's housekeeping, as on Nitro; docs/resources.md)."""
    return max(os.sched_getaffinity(0))


def kernel_cache_dir():
    """A fresh kernel cache on this machine's local storage (/var/tmp: a tmpfs in the parent
    instance, a local disk elsewhere), as /var/cache/cloister is on a real host. Not in the
    work tree: in the parent instance that is the host's directory over 9p, where opening and
    mapping the 55 MiB unpacked kernel alone took 0.66 s per launch."""
    return tempfile.mkdtemp(prefix="cloister-kernels-", dir="/var/tmp")


def monitor_boot(argv, log_path, env=None, timeout=120):
    """Spawn cloister-monitor (`argv` without --booted-fd) and block until it reports the
    heartbeat on a pipe given as --booted-fd; the process and the seconds from spawning it.
    No polling: the QEMU side blocks in accept(), and a poll of a file in the work tree
    every 5 ms (9p in the parent instance: 3 requests each, their interrupts delivered to
    the CPU the enclave's vCPU runs on) cost our side 2,000-2,900 interrupts per boot."""
    r, w = os.pipe()
    t0 = time.monotonic()
    with open(log_path, "w") as log:
        p = subprocess.Popen(argv + ["--booted-fd", str(w)], pass_fds=(w,),
                             stdout=subprocess.DEVNULL, stderr=log, stdin=subprocess.DEVNULL,
                             env=env)
    os.close(w)
    got = b""
    with os.fdopen(r, "rb", buffering=0) as f:
        while b"booted" not in got:
            left = t0 + timeout - time.monotonic()
            if left <= 0 or not select.select([f], [], [], left)[0]:
                break
            chunk = f.read(64)
            if not chunk:  # the monitor ended without a heartbeat
                break
            got += chunk
    seconds = time.monotonic() - t0
    if b"booted" not in got:
        stop([p])
        why = open(log_path).read()[-2000:]
        raise SystemExit(f"cloister-monitor: no heartbeat (exit {p.returncode}, "
                         f"{seconds:.0f} s); its log ends:\n{why}")
    return p, seconds


def monitor_argv(monitor, eif, memory, cpu_ids, cid, uds, booted_fd=None, timeout=600):
    """cloister-monitor's command line; without `booted_fd` for monitor_boot()."""
    return [monitor, "--eif", eif, "--memory", str(memory), "--cpu-ids", str(cpu_ids),
            "--cid", str(cid), "--vsock-uds", uds, "--heartbeat-timeout", str(timeout)] + \
        (["--booted-fd", str(booted_fd)] if booted_fd is not None else [])


def qemu_argv(microvm, kernel, initrd, memory, cid, cmdline):
    # e2e_parent_cid=2: vhost-vsock delivers guest packets only to CID 2 (tests/e2e/vsock-init.c)
    return ["bash", microvm, "boot", "--kernel", kernel, "--initrd", initrd, "--memory",
            str(memory), "--cpus", "1", "--cid", str(cid), "--append",
            cmdline + " e2e_parent_cid=2"]


def heartbeat_listener():
    """The parent's end of the Nitro heartbeat for QEMU guests: AF_VSOCK port 9000."""
    hb = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    hb.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    hb.bind((socket.VMADDR_CID_ANY, 9000))
    hb.listen(64)
    return hb


def answer_heartbeat(hb, timeout):
    """Accept one heartbeat, echo its byte; the guest's CID."""
    hb.settimeout(timeout)
    c, (cid, _) = hb.accept()
    c.settimeout(30)
    c.sendall(c.recv(1))
    c.close()
    return cid


def qemu_boot(microvm, kernel, initrd, memory, cid, cmdline, hb, timeout):
    """Spawn QEMU microvm (vhost-vsock, CID `cid`) and wait for its heartbeat on `hb`; the
    process and the seconds from spawning it to the heartbeat."""
    argv = qemu_argv(microvm, kernel, initrd, memory, cid, cmdline)
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         stdin=subprocess.DEVNULL)
    answer_heartbeat(hb, timeout)
    return p, time.monotonic() - t0


def qemu_launch(microvm, kernel, initrd, cmdline, hb, memory=256, cid=17, timeout=120):
    """Seconds from spawning QEMU microvm (vhost-vsock) to its heartbeat; QEMU is stopped."""
    p, seconds = qemu_boot(microvm, kernel, initrd, memory, cid, cmdline, hb, timeout)
    stop([p])
    return seconds


def retry(connect, attempts=100, delay=0.1):
    """connect() until it returns: a guest's server listens a moment after its heartbeat."""
    for attempt in range(attempts):
        try:
            return connect()
        except (OSError, SystemExit):
            if attempt == attempts - 1:
                raise
            time.sleep(delay)


def stop(procs, timeout=60):
    """SIGTERM every process still running, then wait; {pid: exit status}."""
    for p in procs:
        if p.poll() is None:
            p.terminate()
    out = {}
    for p in procs:
        try:
            out[p.pid] = p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            out[p.pid] = p.wait()
    return out
