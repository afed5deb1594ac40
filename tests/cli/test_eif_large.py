#!/usr/bin/env python3
"""cloister build-eif / describe-eif on a multi-GiB image in bounded memory, and reproducible
builds through the command line. Issue 2 asks that a multi-GiB EIF be built and described
without loading it into memory: both commands run here with their address space capped far
below the image size, and the measurements are checked against hashes computed by this test
(hashlib over the same bytes), never by the code under test. Prints TAP."""
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile

CLOISTER = os.environ.get("CLOISTER", os.path.join(os.path.dirname(__file__), "../../build/src/cli/cloister"))
GIB = 1 << 30
RAMDISK_SIZE = 2 * GIB + 4097  # past 2 GiB, and not a multiple of any buffer size
AS_LIMIT = 256 << 20  # address space for the tool: an eighth of the image
results = []


def check(name, cond, detail=""):
    results.append((name, bool(cond), detail))


def limited():
    resource.setrlimit(resource.RLIMIT_AS, (AS_LIMIT, AS_LIMIT))


def run(args, env=None, limit=False):
    return subprocess.run([CLOISTER] + args, capture_output=True, text=True, env=env,
                          preexec_fn=limited if limit else None)


def pcr(*paths_or_bytes):
    """nitro-compat.md §1.4: PCR = SHA-384(48 zero bytes || SHA-384(content))."""
    inner = hashlib.sha384()
    for p in paths_or_bytes:
        if isinstance(p, bytes):
            inner.update(p)
            continue
        with open(p, "rb") as f:
            while True:
                b = f.read(8 << 20)
                if not b:
                    break
                inner.update(b)
    return hashlib.sha384(bytes(48) + inner.digest()).hexdigest()


def main():
    with tempfile.TemporaryDirectory(prefix="cloister-eif-large-") as d:
        st = os.statvfs(d)
        if st.f_bavail * st.f_frsize < RAMDISK_SIZE + GIB:
            # The EIF itself is written for real (2 GiB); say so rather than fail on a full disk.
            print("1..1")
            print(f"ok 1 # SKIP {d} has less than 3 GiB free for the 2 GiB EIF")
            return 0
        kernel = os.path.join(d, "bzImage")
        ramdisk = os.path.join(d, "big.cpio")
        small = os.path.join(d, "small.cpio")
        with open(kernel, "wb") as f:
            f.write(os.urandom(1 << 20))
        with open(ramdisk, "wb") as f:  # sparse: costs no disk, reads as zeros with a tail
            f.truncate(RAMDISK_SIZE - 16)
            f.seek(RAMDISK_SIZE - 16)
            f.write(b"0123456789abcdef")
        with open(small, "wb") as f:
            f.write(os.urandom(4096))
        cmdline = "console=ttyS0 reboot=k"
        out = os.path.join(d, "big.eif")

        r = run(["build-eif", "--kernel", kernel, "--cmdline", cmdline, "--ramdisk", ramdisk,
                 "--output", out, "--build-time", "2026-01-01T00:00:00Z"], limit=True)
        check("a 2 GiB ramdisk builds with the address space capped at 256 MiB",
              r.returncode == 0, r.stderr[-300:])
        size = os.path.getsize(out) if os.path.exists(out) else 0
        check("the EIF holds every byte: header, 4 section headers, the sections",
              size == 548 + 4 * 12 + (1 << 20) + len(cmdline) + RAMDISK_SIZE + metadata_len(out),
              f"size {size}")

        want0 = pcr(kernel, cmdline.encode(), ramdisk)
        want1 = pcr(kernel, cmdline.encode(), ramdisk)
        r = run(["describe-eif", "--eif-path", out], limit=True)
        got = {}
        try:
            got = json.loads(r.stdout)["Measurements"]
        except (ValueError, KeyError):
            pass
        check("describe-eif reads it with the address space capped at 256 MiB",
              r.returncode == 0, r.stderr[-300:])
        check("PCR0 of the 2 GiB image is the SHA-384 chain over its sections",
              got.get("PCR0") == want0, f"{got.get('PCR0')} != {want0}")
        check("PCR1 (kernel, cmdline, first ramdisk) matches", got.get("PCR1") == want1)
        check("PCR2 with one ramdisk is the measurement of nothing", got.get("PCR2") == pcr(b""))
        check("the CRC over 2 GiB checks out", json.loads(r.stdout or "{}").get("CheckCRC") is True)
        os.unlink(out)

        # Reproducible through the CLI: SOURCE_DATE_EPOCH and --build-time fix the bytes.
        outs = []
        for i, how in enumerate(["epoch", "epoch", "flag"]):
            o = os.path.join(d, f"r{i}.eif")
            env = dict(os.environ)
            args = ["build-eif", "--kernel", kernel, "--cmdline", cmdline, "--ramdisk", small,
                    "--output", o, "--name", "repro", "--version", "1"]
            if how == "epoch":
                env["SOURCE_DATE_EPOCH"] = "1767225600"
            else:
                env.pop("SOURCE_DATE_EPOCH", None)
                args += ["--build-time", "2026-01-01T00:00:00+00:00"]  # as the epoch is written
            r = run(args, env=env)
            outs.append(open(o, "rb").read() if r.returncode == 0 else b"")
        check("two builds with the same SOURCE_DATE_EPOCH are byte-identical",
              outs[0] and outs[0] == outs[1])
        check("--build-time of the same instant, written alike, gives the same bytes",
              outs[0] and outs[0] == outs[2])
        env = dict(os.environ, SOURCE_DATE_EPOCH="1767225601")
        o = os.path.join(d, "later.eif")
        r = run(["build-eif", "--kernel", kernel, "--cmdline", cmdline, "--ramdisk", small,
                 "--output", o, "--name", "repro", "--version", "1"], env=env)
        later = open(o, "rb").read() if r.returncode == 0 else b""
        check("a different build time changes the bytes (it is in the metadata), not the PCRs",
              later and later != outs[0] and
              json.loads(run(["describe-eif", "--eif-path", o]).stdout)["Measurements"] ==
              json.loads(run(["describe-eif", "--eif-path", os.path.join(d, "r0.eif")]).stdout)["Measurements"])

    print(f"1..{len(results)}")
    for i, (name, ok, detail) in enumerate(results, 1):
        print(f"{'ok' if ok else 'not ok'} {i} - {name}")
        if not ok and detail:
            print(f"# {detail}")
    return 0 if all(ok for _, ok, _ in results) else 1


def metadata_len(path):
    """The metadata section's size, read from the header's size table (nitro-compat.md §1.1):
    the one section whose size this test does not choose."""
    with open(path, "rb") as f:
        hdr = f.read(548)
    n = int.from_bytes(hdr[0x1A:0x1C], "big")
    sizes = [int.from_bytes(hdr[0x11C + 8 * i:0x124 + 8 * i], "big") for i in range(n)]
    known = {1 << 20, len("console=ttyS0 reboot=k"), RAMDISK_SIZE}
    rest = [s for s in sizes if s not in known]
    return rest[0] if len(rest) == 1 else -1


if __name__ == "__main__":
    sys.exit(main())
