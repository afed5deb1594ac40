#!/usr/bin/env python3
"""nitro-cli compatible lifecycle commands without KVM: argument errors give nitro-cli's
[ Exx ] codes and exit statuses, an empty host describes as [], stale sockets are cleaned,
run-enclave without a pool names the fix, every subcommand answers --help, describe-enclaves
and terminate-enclave print nitro-cli's JSON (against fake enclave processes that answer the
control socket), run-enclave reads the PCR3/PCR4 inputs before anything else. Runs the
`nitro-cli` symlink next to the build's `cloister`. Prints TAP. (The lifecycle with real
enclaves: tests/e2e/test_35_lifecycle.sh.)"""
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading

CLOISTER = os.environ.get("CLOISTER", os.path.join(os.path.dirname(__file__), "../../build/src/cli/cloister"))
NITRO = os.path.join(os.path.dirname(os.path.abspath(CLOISTER)), "nitro-cli")
results = []


def check(name, cond, detail=""):
    results.append((name, bool(cond), detail))


def nitro(env, *args):
    return subprocess.run([NITRO, *args], capture_output=True, text=True, env=env, timeout=60)


def expect(env, code, name, *args, stderr_has=None):
    r = nitro(env, *args)
    ok = r.returncode == code and f"[ E{code:02d} ]" in r.stderr
    if stderr_has is not None:
        ok = ok and stderr_has in r.stderr
    check(f"{name}: E{code:02d}", ok, f"exit {r.returncode}: {r.stderr[:300]}")


# Each subcommand's --help must exit 0 and name these flags (nitro-cli's clap prints help for
# every subcommand; scripts and people rely on it). A subcommand `cloister --help` lists but this
# table lacks fails too, so new ones get a line here.
HELP_FLAGS = {
    "build-enclave": ["--docker-uri", "--output-file", "--signing-certificate", "--private-key"],
    "build-eif": ["--kernel", "--cmdline", "--ramdisk", "--output"],
    "describe-eif": ["--eif-path"],
    "pcr": ["--input", "--signing-certificate"],
    "sign-eif": ["--eif-path", "--signing-certificate", "--private-key"],
    "parent-instance": ["check", "run", "--device"],
    "vsock-forward": ["--enclave-id", "--uds", "--tcp-listen", "--vsock-port", "--vsock-listen",
                      "--tcp-connect"],
    "blobs": ["--kernel-dir", "--output"],
    "allocator": ["--config", "--release", "--dry-run"],
    "run-enclave": ["--eif-path", "--memory", "--cpu-count", "--cpu-ids", "--enclave-cid",
                    "--enclave-name", "--debug-mode", "--attach-console", "--config"],
    "describe-enclaves": ["--metadata"],
    "terminate-enclave": ["--enclave-id", "--enclave-name", "--all"],
    "console": ["--enclave-id", "--enclave-name", "--disconnect-timeout"],
    "explain": ["--error-code"],
    "ca": ["init", "show", "--dir"],
    "verify-attestation": ["--document", "--root", "--pcr", "--nonce"],
}


def check_help(env):
    r = subprocess.run([CLOISTER, "--help"], capture_output=True, text=True, env=env, timeout=60)
    listed = re.findall(r"^  ([a-z][a-z-]+) ", r.stdout, re.M)
    check("cloister --help lists the subcommands", r.returncode == 0 and len(listed) >= 10,
          r.stdout + r.stderr)
    for cmd in listed:
        check(f"{cmd} is in this test's --help table", cmd in HELP_FLAGS, "add it to HELP_FLAGS")
    for cmd, flags in HELP_FLAGS.items():
        for prog in (CLOISTER, NITRO):
            r = subprocess.run([prog, cmd, "--help"], capture_output=True, text=True, env=env,
                               timeout=60)
            missing = [f for f in flags if f not in r.stdout]
            check(f"{os.path.basename(prog)} {cmd} --help: status 0, names its flags",
                  r.returncode == 0 and not missing,
                  f"exit {r.returncode}, missing {missing}: {(r.stdout + r.stderr)[:300]}")


class FakeEnclaveProcess:
    """Answers an enclave process's control socket (protocol in src/cli/nitro/enclave.h) so
    describe-enclaves and terminate-enclave print real output without KVM."""

    def __init__(self, sockets_dir, slot, record, metadata=b""):
        self.path = os.path.join(sockets_dir, f"{slot:x}.sock")
        self.reply = "".join(f"{k} {v}\n" for k, v in record).encode() + b"\n" + metadata
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.done = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.done:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                req = b""
                while not req.endswith(b"\n"):
                    chunk = conn.recv(1)
                    if not chunk:
                        break
                    req += chunk
                if req == b"describe\n":
                    conn.sendall(self.reply)
                elif req == b"terminate\n":
                    conn.sendall(b"terminating\n")
                    self.stop()
                    conn.sendall(b"terminated\n")

    def stop(self):
        if not self.done:
            self.done = True
            self.sock.close()
            if os.path.exists(self.path):
                os.unlink(self.path)


def ordered(text):
    """The JSON document with every object as a list of (key, value) pairs, in output order."""
    return json.loads(text, object_pairs_hook=list)


def keys(pairs):
    return [k for k, _ in pairs]


def check_json_outputs(env):
    pcr = ["%02x" % i * 48 for i in (1, 2, 3, 8)]
    sockets = env["NITRO_CLI_SOCKETS_PATH"]
    os.makedirs(sockets, exist_ok=True)
    first = FakeEnclaveProcess(sockets, 0x2a, [
        ("id", "i-0123456789abcdef0-enc2a"), ("pid", os.getpid()), ("cid", 18), ("mib", 512),
        ("cpus", "1,3"), ("state", "RUNNING"), ("flags", "NONE"), ("pcr0", pcr[0]),
        ("pcr1", pcr[1]), ("pcr2", pcr[2]), ("pcr8", pcr[3]), ("name", "signed")],
        metadata=json.dumps({
            "ImageName": "app", "ImageVersion": "1.0",
            "BuildMetadata": {"BuildTime": "2025-01-01T00:00:00+00:00", "BuildTool": "cloister",
                              "BuildToolVersion": "0.1.0", "OperatingSystem": "Linux",
                              "KernelVersion": "6.1"},
            "DockerInfo": None, "CustomMetadata": {"team": "x"}}).encode())
    second = FakeEnclaveProcess(sockets, 0x1b, [
        ("id", "i-0123456789abcdef0-enc1b"), ("pid", os.getpid()), ("cid", 16), ("mib", 128),
        ("cpus", "2"), ("state", "TERMINATING"), ("flags", "DEBUG_MODE"), ("pcr0", pcr[0]),
        ("pcr1", pcr[1]), ("pcr2", pcr[2]), ("name", "debug")],
        # an EIF whose metadata lacks BuildMetadata: listed without the metadata keys
        metadata=b'{"ImageName": "partial", "ImageVersion": "0"}')
    try:
        enclave_keys = ["EnclaveName", "EnclaveID", "ProcessID", "EnclaveCID", "NumberOfCPUs",
                        "CPUIDs", "MemoryMiB", "State", "Flags", "Measurements"]
        r = nitro(env, "describe-enclaves")
        doc = ordered(r.stdout) if r.returncode == 0 else None
        check("describe-enclaves lists fake enclave processes, by CID",
              doc and [dict(e)["EnclaveCID"] for e in doc] == [16, 18], r.stdout + r.stderr)
        if doc:
            check("describe-enclaves: nitro-cli's key order (nitro-compat §2.2)",
                  all(keys(e) == enclave_keys for e in doc), [keys(e) for e in doc])
            check("describe-enclaves: Measurements key order, PCR8 only when signed",
                  keys(dict(doc[1])["Measurements"]) == ["HashAlgorithm", "PCR0", "PCR1", "PCR2",
                                                         "PCR8"]
                  and keys(dict(doc[0])["Measurements"]) == ["HashAlgorithm", "PCR0", "PCR1",
                                                             "PCR2"],
                  [keys(dict(e)["Measurements"]) for e in doc])
            check("describe-enclaves: values as described",
                  dict(doc[1])["CPUIDs"] == [1, 3] and dict(doc[1])["NumberOfCPUs"] == 2
                  and dict(doc[0])["State"] == "TERMINATING"
                  and dict(doc[0])["Flags"] == "DEBUG_MODE", r.stdout)
            check("describe-enclaves: serde's pretty print (2-space indent)",
                  r.stdout == json.dumps(json.loads(r.stdout), indent=2) + "\n", r.stdout)
        r = nitro(env, "describe-enclaves", "--metadata")
        doc = ordered(r.stdout) if r.returncode == 0 else None
        check("describe-enclaves --metadata: ImageName, ImageVersion, Metadata after Measurements",
              doc and keys(doc[1]) == enclave_keys + ["ImageName", "ImageVersion", "Metadata"],
              f"exit {r.returncode}: {r.stdout + r.stderr}")
        check("describe-enclaves --metadata: Metadata in describe-eif's key order",
              doc and keys(dict(doc[1])["Metadata"]) == [
                  "BuildTime", "BuildTool", "BuildToolVersion", "OperatingSystem",
                  "KernelVersion", "DockerInfo", "team"], r.stdout)
        check("describe-enclaves --metadata: incomplete EIF metadata is left out, not a crash",
              doc and keys(doc[0]) == enclave_keys, f"exit {r.returncode}: {r.stdout}")

        r = nitro(env, "terminate-enclave", "--enclave-id", "i-0123456789abcdef0-enc2a")
        check("terminate-enclave: {EnclaveName, EnclaveID, Terminated} in that order",
              r.returncode == 0 and ordered(r.stdout) == [
                  ("EnclaveName", "signed"), ("EnclaveID", "i-0123456789abcdef0-enc2a"),
                  ("Terminated", True)], r.stdout + r.stderr)
        check("terminate-enclave: nitro-cli's stderr line",
              "Successfully terminated enclave i-0123456789abcdef0-enc2a." in r.stderr, r.stderr)
        check("terminate-enclave: serde's pretty print",
              r.returncode == 0 and r.stdout == json.dumps(json.loads(r.stdout), indent=2) + "\n",
              r.stdout)
        r = nitro(env, "describe-enclaves")
        check("the terminated enclave is gone, the other stays",
              r.returncode == 0 and [dict(e)["EnclaveID"] for e in ordered(r.stdout)]
              == ["i-0123456789abcdef0-enc1b"], r.stdout + r.stderr)
    finally:
        first.stop()
        second.stop()


def check_parent_identity(env, eif, tmp):
    """run-enclave reads the PCR3/PCR4 inputs before it needs a pool: mistakes fail first."""
    conf = os.path.join(tmp, "parent.conf")
    e = dict(env, CLOISTER_PARENT_CONF=conf)
    run = ("run-enclave", "--eif-path", eif, "--memory", "128", "--cpu-count", "1")
    with open(conf, "w") as f:
        f.write("# comment\nparent_role = \"arn:aws:iam::123456789012:role/x\"\n")
    expect(e, 3, "run-enclave with a quoted value in parent.conf", *run,
           stderr_has=f"{conf}:2: write the parent_role without quotes")
    with open(conf, "w") as f:
        f.write("parent_instance = i-0123456789abcdef0\n")
    expect(e, 3, "run-enclave with an unknown parent.conf key", *run,
           stderr_has="unknown key 'parent_instance'")
    expect(dict(e, CLOISTER_PARENT_ID="i-0123 456"), 3,
           "run-enclave with CLOISTER_PARENT_ID holding a space", *run, stderr_has="CLOISTER_PARENT_ID")
    os.unlink(conf)
    os.mkdir(conf)
    expect(e, 19, "run-enclave with an unreadable parent.conf", *run, stderr_has=conf)
    os.rmdir(conf)
    with open(conf, "w") as f:
        f.write("parent_role = arn:aws:iam::123456789012:role/x\nparent_id = i-0123456789abcdef0\n")
    expect(e, 19, "run-enclave with a good parent.conf goes on to the pool check", *run,
           stderr_has="cloister allocator")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ)
        env["NITRO_CLI_SOCKETS_PATH"] = os.path.join(tmp, "run")
        env["NITRO_CLI_LOGS_PATH"] = os.path.join(tmp, "log")
        # PCR3/PCR4 inputs: not this host's /etc/cloister/parent.conf or environment
        env["CLOISTER_PARENT_CONF"] = os.path.join(tmp, "no-parent.conf")
        env.pop("CLOISTER_PARENT_ROLE", None)
        env.pop("CLOISTER_PARENT_ID", None)
        eif = os.path.join(tmp, "image.eif")
        with open(eif, "wb") as f:
            f.truncate(20 << 20)  # 20 MiB: nitro-cli wants at least 4 x 20 = 80 MiB

        r = nitro(env, "--version")
        check("runs as nitro-cli (argv[0])", r.returncode == 0 and r.stdout.startswith("cloister"),
              r.stdout + r.stderr)

        r = nitro(env, "describe-enclaves")
        check("describe-enclaves with nothing running prints []", r.returncode == 0 and r.stdout == "[]\n",
              repr(r.stdout) + r.stderr)

        check_help(env)

        # run-enclave flag rules (nitro-compat §2.1, §2.4, §2.7)
        expect(env, 1, "run-enclave without --eif-path", "run-enclave", "--memory", "128", "--cpu-count", "1")
        expect(env, 1, "run-enclave without --memory", "run-enclave", "--eif-path", eif, "--cpu-count", "1")
        expect(env, 1, "run-enclave without CPUs", "run-enclave", "--eif-path", eif, "--memory", "128")
        expect(env, 2, "run-enclave --cpu-count with --cpu-ids", "run-enclave", "--eif-path", eif,
               "--memory", "128", "--cpu-count", "1", "--cpu-ids", "1")
        cfg = os.path.join(tmp, "cfg.json")
        with open(cfg, "w") as f:
            f.write('{"eif_path": "%s", "memory_mib": 128, "cpu_count": 1}' % eif)
        expect(env, 2, "run-enclave --config with --memory", "run-enclave", "--config", cfg, "--memory", "128")
        expect(env, 3, "run-enclave --memory abc", "run-enclave", "--eif-path", eif, "--memory", "abc",
               "--cpu-count", "1")
        for cid in ("1", "2", "3", "4294967295", "4294967296"):
            expect(env, 3, f"run-enclave --enclave-cid {cid}", "run-enclave", "--eif-path", eif,
                   "--memory", "128", "--cpu-count", "1", "--enclave-cid", cid)
        expect(env, 23, "run-enclave --cpu-ids x", "run-enclave", "--eif-path", eif, "--memory", "128",
               "--cpu-ids", "x")
        expect(env, 26, "run-enclave with memory below 4 x the EIF", "run-enclave", "--eif-path", eif,
               "--memory", "64", "--cpu-count", "1", stderr_has="At least 80 MB")
        expect(env, 19, "run-enclave with a missing EIF", "run-enclave", "--eif-path",
               os.path.join(tmp, "missing.eif"), "--memory", "128", "--cpu-count", "1")
        expect(env, 19, "run-enclave without a pool names the fix", "run-enclave", "--eif-path", eif,
               "--memory", "128", "--cpu-count", "1", stderr_has="cloister allocator")
        check_parent_identity(env, eif, tmp)

        # terminate-enclave / console / describe-enclaves flags
        expect(env, 1, "terminate-enclave without a target", "terminate-enclave")
        expect(env, 2, "terminate-enclave --all with --enclave-id", "terminate-enclave", "--all",
               "--enclave-id", "i-0000000000000000-enc1")
        expect(env, 3, "terminate-enclave --enclave-id not an ID", "terminate-enclave", "--enclave-id", "nope")
        expect(env, 39, "terminate-enclave of no running enclave", "terminate-enclave", "--enclave-id",
               "i-0000000000000000-enc1")
        expect(env, 58, "terminate-enclave --enclave-name unknown", "terminate-enclave", "--enclave-name", "x")
        r = nitro(env, "terminate-enclave", "--all")
        check("terminate-enclave --all with nothing running succeeds", r.returncode == 0, r.stderr)
        expect(env, 3, "describe-enclaves --bogus", "describe-enclaves", "--bogus")
        expect(env, 1, "console without a target", "console")
        expect(env, 2, "console --enclave-id with --enclave-name", "console", "--enclave-id",
               "i-0000000000000000-enc1", "--enclave-name", "x")
        expect(env, 3, "console --disconnect-timeout abc", "console", "--enclave-id",
               "i-0000000000000000-enc1", "--disconnect-timeout", "abc")
        expect(env, 44, "console of an enclave that never ran", "console", "--enclave-id",
               "i-0000000000000000-enc1")

        # an ended enclave's console stays readable by ID (beyond nitro-cli)
        os.makedirs(env["NITRO_CLI_LOGS_PATH"], exist_ok=True)
        with open(os.path.join(env["NITRO_CLI_LOGS_PATH"], "i-0000000000000000-enc2a.console"), "w") as f:
            f.write("hello from ttyS0\n")
        r = nitro(env, "console", "--enclave-id", "i-0000000000000000-enc2a")
        check("console of an ended enclave prints its log", r.returncode == 0 and "hello from ttyS0" in r.stdout,
              r.stdout + r.stderr)

        # a socket nobody listens on is stale: describe deletes it
        os.makedirs(env["NITRO_CLI_SOCKETS_PATH"], exist_ok=True)
        stale = os.path.join(env["NITRO_CLI_SOCKETS_PATH"], "1234abcd.sock")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(stale)
        s.close()
        r = nitro(env, "describe-enclaves")
        check("a stale socket is removed and not listed",
              r.returncode == 0 and r.stdout == "[]\n" and not os.path.exists(stale), r.stdout + r.stderr)

        check_json_outputs(env)

    print(f"1..{len(results)}")
    for i, (name, ok, detail) in enumerate(results, 1):
        print(f"{'ok' if ok else 'not ok'} {i} - {name}")
        if not ok and detail:
            print(f"# {detail}")
    return 0 if all(ok for _, ok, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
