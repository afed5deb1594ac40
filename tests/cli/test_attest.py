#!/usr/bin/env python3
"""`cloister ca` and `cloister verify-attestation` against real files: a fresh CA, and a public
AWS attestation document (debug enclave, 2022-07-26) verified with the AWS Nitro root.
Exit codes and JSON are checked as docs/attestation.md promises. Prints TAP."""
import json
import os
import stat
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
CLOISTER = os.environ.get("CLOISTER", os.path.join(HERE, "../../build/src/cli/cloister"))
DATA = os.path.join(HERE, "../data/attest")
DOC = os.path.join(DATA, "aws-debug-2022-07-26.cbor")
ROOT = os.path.join(DATA, "aws-nitro-root.pem")
AT = "1658860752"  # the document's own timestamp (its leaf certificate lived 3 hours)
PCR4 = ("5a3e54bd0a5f50b1b5ec641e063a1f1e7e5aadc139f49fd8784afca90a83767e"
        "c13dd70b3f2e3f43b8e23355baaa9053")
NONCE = "831493346b44132e2ffb7988bce351f593eeb8dd"
results = []


def check(name, cond, detail=""):
    results.append((name, bool(cond), detail))


def run(*args, env=None):
    p = subprocess.run([CLOISTER, *args], capture_output=True, text=True, env=env)
    return p.returncode, p.stdout, p.stderr


def verify(*extra, doc=DOC, root=ROOT):
    return run("verify-attestation", "--document", doc, "--root", root, *extra)


with tempfile.TemporaryDirectory() as tmp:
    ca = os.path.join(tmp, "ca")
    rc, out, err = run("ca", "init", "--dir", ca)
    check("ca init succeeds", rc == 0, err)
    info = json.loads(out) if rc == 0 else {}
    check("ca init prints the root path", info.get("RootCertificate") == ca + "/root.pem", out)
    modes = {f: stat.S_IMODE(os.stat(os.path.join(ca, f)).st_mode)
             for f in ("root.key", "intermediate.key", "root.pem")} if rc == 0 else {}
    check("ca keys are 0600", modes.get("root.key") == 0o600
          and modes.get("intermediate.key") == 0o600, str(modes))
    rc, out, err = run("ca", "init", "--dir", ca)
    check("ca init refuses to overwrite", rc != 0 and "--force" in err, err)
    env = dict(os.environ, CLOISTER_CA_DIR=ca)
    rc, out, err = run("ca", "show", env=env)
    check("ca show honours CLOISTER_CA_DIR", rc == 0 and json.loads(out)["RootSHA256"]
          == info.get("RootSHA256"), out + err)

    rc, out, err = verify("--at-time", AT, "--pcr", "4=" + PCR4, "--nonce", NONCE)
    summary = json.loads(out) if out else {}
    check("AWS document verifies at its time", rc == 0 and summary.get("Valid") is True, err)
    check("JSON names the module id",
          summary.get("ModuleId") == "i-0936512d5ae6ee91a-enc01823bcde8eb8a8a", out)
    check("JSON lists 16 PCRs", len(summary.get("PCRs", {})) == 16, out)
    rc, out, err = verify("--at-time", "1770065027", "--nonce",
                          "0123456789abcdef0123456789abcdef01234567",
                          doc=os.path.join(DATA, "aws-2026-02-02-indefinite.cbor"))
    check("recent AWS document (indefinite map) verifies", rc == 0
          and json.loads(out)["ModuleId"] == "i-0340e0cb833504eb6-enc019c12d31f78864d", err)
    rc, out, err = verify()
    check("expired AWS chain exits 5", rc == 5 and json.loads(out)["Valid"] is False, err)
    rc, out, err = verify("--at-time", AT, "--nonce", "00")
    check("nonce mismatch exits 6", rc == 6 and "nonce" in err, err)
    rc, out, err = verify("--at-time", AT, "--pcr", "0=" + PCR4)
    check("PCR mismatch exits 6", rc == 6 and "PCR0" in err, err)
    rc, out, err = verify("--at-time", AT, root=os.path.join(ca, "root.pem"))
    check("foreign root exits 5", rc == 5, err)

    blob = open(DOC, "rb").read()
    tampered = os.path.join(tmp, "tampered.cbor")
    open(tampered, "wb").write(blob[:-1] + bytes([blob[-1] ^ 1]))
    rc, out, err = verify("--at-time", AT, doc=tampered)
    check("tampered signature exits 4", rc == 4, err)
    truncated = os.path.join(tmp, "truncated.cbor")
    open(truncated, "wb").write(blob[:1000])
    rc, out, err = verify("--at-time", AT, doc=truncated)
    check("truncated document exits 3", rc == 3 and out == "", err)
    rc, out, err = verify(doc=os.path.join(tmp, "missing.cbor"))
    check("missing file exits 2", rc == 2, err)
    rc, out, err = run("verify-attestation", "--document", DOC)
    check("missing --root exits 1", rc == 1, err)
    rc, out, err = verify("--pcr", "99=00")
    check("bad --pcr exits 1", rc == 1, err)

print("1..%d" % len(results))
for i, (name, ok, detail) in enumerate(results, 1):
    print("%s %d - %s" % ("ok" if ok else "not ok", i, name))
    if not ok and detail:
        for line in str(detail).splitlines()[:10]:
            print("#   " + line)
sys.exit(0 if all(ok for _, ok, _ in results) else 1)
