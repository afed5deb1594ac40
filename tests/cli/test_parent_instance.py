#!/usr/bin/env python3
"""cloister parent-instance run, as a user sees it (docs/parent-instance.md §2). Prints TAP.

Two boots of the parent instance, no more (each costs 15-30 s of CPU under TCG):
  1. a command that prints on both streams and exits 7: the status comes back, the lines are
     streamed while it still runs, the work directory is writable at its own path, the host's
     root is read-only, --env reaches the command;
  2. a command that sleeps far longer than --timeout: 124, and the QEMU that was running (found
     in the process table while it ran) and its control directory are gone afterwards.
Failures to start are checked against a stand-in QEMU that records being run, so "nothing
booted" is observed, not assumed. So are the boots tried again when QEMU dies or stalls before
the command starts (TCG's rare assertion failures): stand-ins that abort, exit or hang, and for
boot 1 one that aborts once and then runs the real QEMU. Without qemu-system-x86_64 the boots are skipped (TAP SKIP).
Kernels come from scripts/fetch-kernel.sh's cache, as in tests/e2e/run; nothing else is
fetched."""
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
CLOISTER = os.environ.get("CLOISTER", os.path.join(TOP, "build/src/cli/cloister"))
results = []


def check(name, cond, detail=""):
    results.append((name, bool(cond), detail, None))


def skip(name, why):
    results.append((name, True, "", why))


def ctl_dirs(tmpdir):
    return sorted(n for n in os.listdir(tmpdir) if n.startswith("cloister-parent."))


def procs_mentioning(text):
    """{pid: (ppid, argv0)} of every process whose command line contains text."""
    found = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cmd = f.read()
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        if text.encode() in cmd:
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            found[int(d)] = (ppid, cmd.split(b"\0")[0].decode(errors="replace"))
    return found


class Run:
    """`cloister parent-instance run ARGS`, its output read line by line as it comes."""

    def __init__(self, args, env, cwd):
        self.t0 = time.monotonic()
        self.p = subprocess.Popen([CLOISTER, "parent-instance", "run"] + args, env=env, cwd=cwd,
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        # (line, seconds since start, whether `run` was still running when it arrived)
        self.lines = {"out": [], "err": []}
        self.readers = [threading.Thread(target=self._read, args=(s, k), daemon=True)
                        for s, k in ((self.p.stdout, "out"), (self.p.stderr, "err"))]
        for t in self.readers:
            t.start()

    def _read(self, stream, key):
        for raw in stream:
            self.lines[key].append((raw.decode(errors="replace").rstrip("\n"),
                                    time.monotonic() - self.t0, self.p.poll() is None))

    def wait(self, limit):
        try:
            rc = self.p.wait(limit)
        except subprocess.TimeoutExpired:
            self.p.kill()
            rc = self.p.wait()
        for t in self.readers:
            t.join(10)
        return rc

    def text(self, key):
        return "\n".join(line for line, _, _ in self.lines[key])

    def first(self, key, line):
        return next((x for x in self.lines[key] if x[0] == line), None)


def start_failures(env, tmpdir, scratch):
    """Usage and setup errors: the right status and message, and QEMU never started."""
    marker = os.path.join(scratch, "qemu-was-run")
    fake = os.path.join(scratch, "fake-qemu")
    with open(fake, "w") as f:
        f.write(f"#!/bin/sh\ntouch '{marker}'\nexit 1\n")
    os.chmod(fake, 0o755)
    fenv = dict(env, CLOISTER_QEMU=fake)

    def run(args, e=fenv):
        r = subprocess.run([CLOISTER, "parent-instance", "run"] + args, env=e, cwd=scratch,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
        return r.returncode, r.stderr

    rc, err = run(["--kernel-dir", "/nonexistent", "--", "true"])
    check("--kernel-dir /nonexistent: exit 125, naming the directory, QEMU not started",
          rc == 125 and "/nonexistent" in err and "fetch-kernel.sh" in err
          and not os.path.exists(marker), f"rc {rc}: {err.strip()}")
    for args in ([], ["--"], ["--memory", "1024", "--"]):
        rc, err = run(args)
        check(f"no command ({' '.join(args) or 'no arguments'}): exit 125, says so, QEMU not "
              "started", rc == 125 and "no command given" in err and "CMD" in err
              and not os.path.exists(marker), f"rc {rc}: {err.strip()}")
    rc, err = run(["--cpus", "0", "--", "true"])
    check("--cpus 0 is refused with the value, QEMU not started",
          rc == 125 and "--cpus '0'" in err and not os.path.exists(marker),
          f"rc {rc}: {err.strip()}")
    rc, err = run(["--", "true"], dict(env, CLOISTER_QEMU=os.path.join(scratch, "no-such-qemu")))
    check("a missing QEMU: exit 125 pointing at scripts/setup.sh",
          rc == 125 and "qemu-system-x86_64 not found" in err and "setup.sh" in err,
          f"rc {rc}: {err.strip()}")
    check("no control directory left by the failures", not ctl_dirs(tmpdir), ctl_dirs(tmpdir))


def fake_qemu(scratch, name, body):
    """A stand-in QEMU at scratch/name that appends a line to scratch/name.runs per start."""
    path = os.path.join(scratch, name)
    with open(path, "w") as f:
        f.write(f"#!/bin/sh\nulimit -c 0\necho $$ >>'{path}.runs'\n{body}\n")
    os.chmod(path, 0o755)
    return path


def runs_of(fake):
    try:
        with open(fake + ".runs") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def boot_failures(env, tmpdir, scratch):
    """QEMU dying or stalling before the command starts: booted again, up to --boot-attempts;
    QEMU refusing to start (an exit status) is not retried. Nothing is left behind."""
    def run(fake, args):
        r = subprocess.run([CLOISTER, "parent-instance", "run"] + args + ["--", "true"],
                           env=dict(env, CLOISTER_QEMU=fake), cwd=scratch,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
        return r.returncode, r.stderr

    abort = fake_qemu(scratch, "abort-qemu",
                      'echo "qemu: fake assertion failed" >&2\nkill -ABRT $$')
    rc, err = run(abort, ["--boot-attempts", "2"])
    detail = f"rc {rc}, runs {runs_of(abort)}: {err.strip()}"
    check("QEMU killed by SIGABRT before ready: booted again, 2 attempts, then exit 125",
          rc == 125 and len(runs_of(abort)) == 2, detail)
    check("each retry says why, with QEMU's own messages; the end names the signal and the "
          "attempts", err.count("booting again") == 1 and "fake assertion failed" in err
          and "signal 6" in err and "each of 2 boot attempts" in err, detail)

    exits = fake_qemu(scratch, "exit-qemu", 'echo "qemu: bad option" >&2\nexit 1')
    rc, err = run(exits, [])
    check("QEMU exiting with status 1 is not retried (it would fail the same way): exit 125, "
          "once, its status and message shown", rc == 125 and len(runs_of(exits)) == 1
          and "exit status 1" in err and "bad option" in err and "booting again" not in err,
          f"rc {rc}, runs {runs_of(exits)}: {err.strip()}")

    hang = fake_qemu(scratch, "hang-qemu", "exec sleep 600")
    rc, err = run(hang, ["--boot-timeout", "1", "--boot-attempts", "3"])
    pids = runs_of(hang)
    detail = f"rc {rc}, runs {pids}: {err.strip()}"
    check("a boot that never gets ready: stopped after --boot-timeout, booted again, 3 "
          "attempts, exit 125", rc == 125 and len(pids) == 3
          and err.count("booting again") == 2 and "not ready after 1 s" in err, detail)
    check("no stalled QEMU is left running", pids and not any(os.path.exists(f"/proc/{p}")
                                                                for p in pids), detail)
    rc, err = run(hang, ["--boot-timeout", "0", "--timeout", "2"])
    check("--boot-timeout 0: only --timeout stops it (exit 124, no retry)",
          rc == 124 and "booting again" not in err and len(runs_of(hang)) == 4,
          f"rc {rc}, runs {runs_of(hang)}: {err.strip()}")
    for args in (["--boot-attempts", "0"], ["--boot-attempts", "11"], ["--boot-timeout", "x"]):
        rc, err = run(exits, args)
        check(f"{' '.join(args)} is refused naming the option, QEMU not started",
              rc == 125 and args[0] in err and len(runs_of(exits)) == 1,
              f"rc {rc}: {err.strip()}")
    check("no control directory left by the failed boots", not ctl_dirs(tmpdir), ctl_dirs(tmpdir))


def boot_command(env, tmpdir, kdir, work, other, scratch, qemu):
    """Boot 1: exit status, both streams, live streaming, work dir rw, host root ro, --env;
    QEMU aborts in the first attempt, as TCG's assertions do, and the second boot runs CMD."""
    flaky = fake_qemu(scratch, "flaky-qemu",
                      f'[ "$(wc -l <"$0.runs")" -gt 1 ] && exec "{qemu}" "$@"\n'
                      'echo "qemu: fake assertion failed" >&2\nkill -ABRT $$')
    env = dict(env, CLOISTER_QEMU=flaky)
    # Streaming, shown by order rather than by timing: CMD waits (up to 2 min) for a file that
    # we create only once both of its lines have reached us.
    script = ('echo out; echo err >&2; echo "pwd=$(pwd)"; '
              'echo "env=$PI_TEST:$CLOISTER_PARENT_INSTANCE"; '
              'echo written-inside >"$PI_WORK/from-inside"; '
              'if echo x >"$PI_OTHER/probe" 2>/dev/null; then echo other=writable; '
              'else echo other=refused; fi; '
              'i=0; while [ ! -e "$PI_WORK/go" ] && [ $i -lt 600 ]; do sleep 0.2; i=$((i+1)); done; '
              '[ -e "$PI_WORK/go" ] && echo go=seen || echo go=missing; exit 7')
    run = Run(["--kernel-dir", kdir, "--workdir", work, "--cpus", "1", "--memory", "1024",
               "--timeout", "240", "--env", "PI_TEST=hello world", "--env", f"PI_WORK={work}",
               "--env", f"PI_OTHER={other}", "--", "sh", "-c", script], env, work)
    go = os.path.join(work, "go")
    while run.p.poll() is None and time.monotonic() - run.t0 < 280:
        if not os.path.exists(go) and run.first("out", "out") and run.first("err", "err"):
            open(go, "w").close()
        time.sleep(0.1)
    rc = run.wait(30)
    out, err = run.text("out"), run.text("err")
    lines = out.split("\n")
    detail = f"rc {rc}\nstdout:\n{out}\nstderr:\n{err}"
    check("CMD's exit status 7 is run's exit status", rc == 7, detail)
    o, e = run.first("out", "out"), run.first("err", "err")
    check("CMD's stdout and stderr reach ours, each on its own stream",
          o and e and "err" not in lines and "out" not in err.split("\n"), detail)
    check("output is streamed while CMD runs (CMD saw our answer to its first lines)",
          "go=seen" in lines, detail)
    check("CMD runs in the current directory, the work dir at its own path",
          f"pwd={work}" in lines, detail)
    try:
        with open(os.path.join(work, "from-inside")) as f:
            written = f.read()
    except OSError as ex:
        written = str(ex)
    check("a file written inside the work dir is on the host afterwards",
          written == "written-inside\n", written)
    check("the host root is read-only inside (a host-writable dir outside the work dir)",
          "other=refused" in lines and not os.path.exists(os.path.join(other, "probe")), detail)
    check("--env and CLOISTER_PARENT_INSTANCE=1 reach CMD", "env=hello world:1" in lines, detail)
    check("no control directory left after a normal end", not ctl_dirs(tmpdir), ctl_dirs(tmpdir))
    check("QEMU aborting before ready was retried: 2 starts, one 'booting again', the second boot ran CMD",
          len(runs_of(flaky)) == 2 and err.count("booting again") == 1
          and written == "written-inside\n", f"runs {runs_of(flaky)}\n{detail}")
    return o[1] if o else None


def boot_timeout(env, tmpdir, kdir, work, limit):
    """Boot 2: --timeout stops a command that would run far longer; nothing left behind."""
    run = Run(["--kernel-dir", kdir, "--workdir", work, "--cpus", "1", "--memory", "1024",
               "--timeout", str(limit), "--", "sh", "-c", "echo started; exec sleep 3600"],
              env, work)
    seen = {}
    while run.p.poll() is None:
        # QEMU is the one process whose command line names our private TMPDIR (its ctl share).
        for pid, (ppid, argv0) in procs_mentioning(tmpdir).items():
            if ppid == run.p.pid:
                seen[pid] = argv0
        time.sleep(0.5)
        if time.monotonic() - run.t0 > limit + 60:
            break
    rc = run.wait(30)
    out, err = run.text("out"), run.text("err")
    detail = f"rc {rc}, limit {limit} s\nstdout:\n{out}\nstderr:\n{err}"
    check(f"--timeout {limit} on `sleep 3600`: exit 124 after the command had started",
          rc == 124 and run.first("out", "started"), detail)
    check("the timeout is reported on stderr", f"timed out after {limit} s" in err, detail)
    check("while it ran, its child QEMU was in the process table",
          any("qemu" in a for a in seen.values()), str(seen))
    left = {pid: a for pid, a in seen.items() if os.path.exists(f"/proc/{pid}")}
    left.update({pid: a for pid, (_, a) in procs_mentioning(tmpdir).items()})
    check("no QEMU (or anything using its control directory) is left afterwards", not left,
          str(left))
    check("no control directory left after the timeout", not ctl_dirs(tmpdir), ctl_dirs(tmpdir))


def run_all(env, tmpdir, scratch, work, other):
    start_failures(env, tmpdir, scratch)
    boot_failures(env, tmpdir, scratch)
    boots = ["the exit status, streams, work dir and read-only root",
             "--timeout and what it leaves behind"]
    qemu = os.environ.get("CLOISTER_QEMU") or shutil.which("qemu-system-x86_64")
    if not qemu:
        for b in boots:
            skip(f"boot: {b}", "no qemu-system-x86_64 on this host (scripts/setup.sh installs it)")
        return
    # As tests/e2e/run: the kernel comes from the cache (downloaded once if missing);
    # --kernel-dir keeps `run` from calling the script itself.
    f = subprocess.run(["bash", os.path.join(TOP, "scripts/fetch-kernel.sh"), "parent"],
                       capture_output=True, text=True, timeout=600)
    kdir = f.stdout.strip().split("\n")[-1] if f.returncode == 0 else ""
    check("scripts/fetch-kernel.sh parent gives the parent kernel",
          kdir and os.path.isdir(kdir), f.stderr.strip())
    if not kdir:
        return
    t_cmd = boot_command(env, tmpdir, kdir, work, other, scratch, qemu)
    # Long enough that the command has surely started (twice what boot 1 took to reach its
    # command, plus margin), short enough to stay inside scripts/test.sh's 300 s.
    limit = int(min(150, max(60, 2 * (t_cmd or 60) + 20)))
    boot_timeout(env, tmpdir, kdir, work, limit)


def main():
    scratch = tempfile.mkdtemp(prefix="cloister-pi-test.")
    tmpdir = os.path.join(scratch, "tmp")  # TMPDIR of `run`: its control directories go here
    os.mkdir(tmpdir)
    env = dict(os.environ, TMPDIR=tmpdir)
    # The work dir and a host-writable dir outside it must not be under /tmp: the parent
    # instance puts a tmpfs there, which would hide the read-only host path we probe.
    base = os.path.join(TOP, "build") if os.path.isdir(os.path.join(TOP, "build")) else TOP
    work = os.path.realpath(tempfile.mkdtemp(prefix=".pi-test-work.", dir=base))
    other = os.path.realpath(tempfile.mkdtemp(prefix=".pi-test-other.", dir=base))
    try:
        run_all(env, tmpdir, scratch, work, other)
    except Exception as ex:  # report it as a failure, with the TAP plan still printed
        check("the test itself ran to the end", False, repr(ex))
    finally:
        for d in (scratch, work, other):
            shutil.rmtree(d, ignore_errors=True)
    print(f"1..{len(results)}")
    for i, (name, ok, detail, why) in enumerate(results, 1):
        if why:
            print(f"ok {i} - {name} # SKIP {why}")
            continue
        print(f"{'ok' if ok else 'not ok'} {i} - {name}")
        if not ok and detail:
            for line in str(detail).split("\n"):
                print(f"# {line}")
    return 0 if all(ok for _, ok, _, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
