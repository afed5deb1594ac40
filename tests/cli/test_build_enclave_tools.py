#!/usr/bin/env python3
"""`cloister build-enclave` on images made by the real tools, offline: umoci builds a two-layer
OCI image layout from a directory (the second layer deletes a file, so it carries a whiteout,
and adds a setuid file with a hard link) and sets Cmd/Env/WorkingDir with `umoci config`;
skopeo copies it into an oci-archive and a docker-archive. All three forms must build, give
the same PCR2 and byte-identical customer ramdisks whose cmd/env/workdir/rootfs match the
image; the same tree given as --rootfs must give that PCR2 too. Broken variants (a layer blob
deleted, the config bytes changed, a config that is not JSON, no command, and in skopeo's
docker-archive a byte flipped inside a layer or an edited config) must fail with a message
naming the problem and leave no output file. Prints TAP.

Blobs: the customer ramdisk and PCR2 do not depend on the kernel, so the test makes a
stand-in blobs directory (arbitrary bzImage bytes, the built cloister-init) as
tests/unit/test_build_enclave.c does: no download, works on a fresh machine after
scripts/setup.sh (which installs umoci and skopeo). Booting such an EIF is the e2e tests' job.
"""
import hashlib
import io
import json
import os
import shutil
import stat
import struct
import subprocess
import sys
import tarfile
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
CLOISTER = os.environ.get("CLOISTER", os.path.join(HERE, "../../build/src/cli/cloister"))
BUILD_TIME = "2021-06-01T12:00:00Z"
CMD = ["/bin/sh", "-c", "echo hello from $GREETING; exit 3"]
ENV = ["PATH=/bin", "GREETING=Hello, enclave"]
WORKDIR = "/srv"
results = []


def check(name, cond, detail=""):
    results.append((name, bool(cond), detail))


def sh(*args, cwd=None):
    p = subprocess.run(list(args), capture_output=True, text=True, cwd=cwd)
    if p.returncode != 0:
        raise RuntimeError("%s: exit %d\n%s%s" % (" ".join(args), p.returncode, p.stdout,
                                                  p.stderr))
    return p.stdout


def static_busybox():
    for b in (shutil.which("busybox"), "/bin/busybox", "/usr/bin/busybox"):
        if b and os.access(b, os.X_OK):
            with open(b, "rb") as f:
                if b"/lib64/ld-linux" not in f.read():
                    return b
    return None


def make_blobs(top):
    """A stand-in blobs directory in cloister's layout (docs/build-enclave.md, "Blobs")."""
    blobs = os.path.join(top, "blobs")
    os.makedirs(os.path.join(blobs, "modules"))
    files = {"bzImage": b"stand-in kernel: the customer ramdisk does not depend on it\n",
             "bzImage.config": b"#\n#\n# Linux/x86 6.12.95 Kernel Configuration\n",
             "cmdline": b"reboot=k panic=30 pci=off console=ttyS0\n",
             "modules/load": b"vsock\n"}
    for name, data in files.items():
        with open(os.path.join(blobs, name), "wb") as f:
            f.write(data)
    init = os.path.join(os.path.dirname(CLOISTER), "../../guest/init/cloister-init")
    if os.path.exists(init):
        shutil.copy(init, os.path.join(blobs, "init"))
    else:
        with open(os.path.join(blobs, "init"), "wb") as f:
            f.write(b"stand-in init\n")
    return blobs


def make_image(top, busybox):
    """umoci: directory → two-layer OCI layout at top/layout (tag app); skopeo: → archives."""
    root = os.path.join(top, "tree")
    for d in ("bin", "etc", "srv"):
        os.makedirs(os.path.join(root, d))
    shutil.copy(busybox, os.path.join(root, "bin/busybox"))
    os.symlink("busybox", os.path.join(root, "bin/sh"))
    with open(os.path.join(root, "etc/motd"), "w") as f:
        f.write("deleted by the second layer\n")
    layout = os.path.join(top, "layout")
    bundle = os.path.join(top, "bundle")
    image = "oci:" + layout + ":app"
    sh("umoci", "init", "--layout", layout)
    sh("umoci", "new", "--image", layout + ":app")
    sh("umoci", "unpack", "--rootless", "--image", layout + ":app", bundle)
    sh("cp", "-a", root + "/.", bundle + "/rootfs/")
    sh("umoci", "repack", "--image", layout + ":app", bundle)
    shutil.rmtree(bundle)
    # Layer 2: a whiteout for etc/motd, a setuid file and a hard link to it.
    sh("umoci", "unpack", "--rootless", "--image", layout + ":app", bundle)
    rfs = os.path.join(bundle, "rootfs")
    os.unlink(os.path.join(rfs, "etc/motd"))
    os.makedirs(os.path.join(rfs, "opt/app"))
    with open(os.path.join(rfs, "opt/app/tool"), "w") as f:
        f.write("#!/bin/sh\necho tool\n")
    os.chmod(os.path.join(rfs, "opt/app/tool"), 0o4755)
    os.link(os.path.join(rfs, "opt/app/tool"), os.path.join(rfs, "opt/app/tool-link"))
    sh("umoci", "repack", "--image", layout + ":app", bundle)
    shutil.rmtree(bundle)
    args = ["umoci", "config", "--image", layout + ":app", "--architecture", "amd64",
            "--os", "linux", "--config.workingdir", WORKDIR]
    for c in CMD:
        args += ["--config.cmd", c]
    for e in ENV:
        args += ["--config.env", e]
    sh(*args)
    oci_tar = os.path.join(top, "app-oci.tar")
    docker_tar = os.path.join(top, "app-docker.tar")
    sh("skopeo", "copy", "--quiet", image, "oci-archive:" + oci_tar + ":app")
    sh("skopeo", "copy", "--quiet", image, "docker-archive:" + docker_tar + ":app:latest")
    # The same file system, as a directory: what the enclave should see.
    os.unlink(os.path.join(root, "etc/motd"))
    return layout, oci_tar, docker_tar, root


def build(env, out, *args):
    p = subprocess.run([CLOISTER, "build-enclave", *args, "--output-file", out,
                        "--build-time", BUILD_TIME], capture_output=True, text=True, env=env,
                       timeout=120)
    return p.returncode, p.stdout, p.stderr


def describe(env, eif):
    p = subprocess.run([CLOISTER, "describe-eif", "--eif-path", eif], capture_output=True,
                       text=True, env=env, timeout=60)
    return json.loads(p.stdout) if p.returncode == 0 else {}


def ramdisks(eif):
    """The ramdisk sections of an EIF (nitro-compat §1.1: 548-byte header, big-endian section
    offsets at 0x1C, each section = 12-byte header {type u16, flags u16, size u64} + data)."""
    with open(eif, "rb") as f:
        data = f.read()
    if data[:4] != b".eif":
        return []
    count = struct.unpack_from(">H", data, 0x1A)[0]
    offsets = struct.unpack_from(">32Q", data, 0x1C)
    out = []
    for off in offsets[:count]:
        typ, _flags, size = struct.unpack_from(">HHQ", data, off)
        if typ == 3:
            out.append(data[off + 12:off + 12 + size])
    return out


def cpio_entries(blob):
    """Parse a cpio "newc" archive: path → (mode, ino, nlink, bytes)."""
    entries, pos = {}, 0
    while pos + 110 <= len(blob):
        hdr = blob[pos:pos + 110]
        if hdr[:6] != b"070701":
            raise ValueError("bad cpio magic at %d" % pos)
        f = [int(hdr[6 + 8 * i:14 + 8 * i], 16) for i in range(13)]
        ino, mode, nlink, size, namesize = f[0], f[1], f[4], f[6], f[11]
        name = blob[pos + 110:pos + 110 + namesize - 1].decode()
        pos = (pos + 110 + namesize + 3) & ~3
        body = blob[pos:pos + size]
        pos = (pos + size + 3) & ~3
        if name == "TRAILER!!!":
            break
        entries[name] = (mode, ino, nlink, body)
    return entries


def main():
    busybox = static_busybox()
    missing = [t for t in ("umoci", "skopeo", "cpio") if not shutil.which(t)]
    if missing or not busybox:
        print("1..0 # SKIP needs %s (scripts/setup.sh installs them)"
              % ", ".join(missing + ([] if busybox else ["busybox-static"])))
        return 0
    with tempfile.TemporaryDirectory() as top:
        env = dict(os.environ, NITRO_CLI_LOGS_PATH=os.path.join(top, "log"),
                   TMPDIR=top)
        env.pop("NITRO_CLI_BLOBS", None)
        env.pop("SOURCE_DATE_EPOCH", None)
        blobs = make_blobs(top)
        layout, oci_tar, docker_tar, tree = make_image(top, busybox)
        forms = {"layout": layout, "oci-archive": "oci-archive:" + oci_tar,
                 "docker-archive": "docker-archive:" + docker_tar}
        pcrs, disks = {}, {}
        for name, uri in forms.items():
            eif = os.path.join(top, name + ".eif")
            rc, out, err = build(env, eif, "--docker-uri", uri, "--blobs", blobs)
            check("build-enclave from the umoci/skopeo %s succeeds" % name,
                  rc == 0 and os.path.exists(eif), err)
            meas = json.loads(out).get("Measurements", {}) if rc == 0 else {}
            desc = describe(env, eif) if rc == 0 else {}
            pcrs[name] = desc.get("Measurements", {}).get("PCR2")
            check("%s: describe-eif PCR2 matches build-enclave's" % name,
                  pcrs[name] and pcrs[name] == meas.get("PCR2"), out)
            rds = ramdisks(eif) if rc == 0 else []
            disks[name] = rds[1] if len(rds) == 2 else None
            check("%s: the EIF has two ramdisks" % name, len(rds) == 2, str(len(rds)))
        check("the three forms give the same PCR2", len(set(pcrs.values())) == 1
              and None not in pcrs.values(), json.dumps(pcrs))
        check("the three customer ramdisks are byte-identical",
              None not in disks.values() and len(set(disks.values())) == 1)

        ents = cpio_entries(disks["layout"]) if disks["layout"] else {}
        body = lambda p: ents.get(p, (0, 0, 0, b""))[3]  # noqa: E731
        check("cmd is the config's Cmd, one argument a line",
              body("cmd") == "".join(c + "\n" for c in CMD).encode(), body("cmd"))
        check("env is the config's Env, one variable a line",
              body("env") == "".join(e + "\n" for e in ENV).encode(), body("env"))
        check("workdir is the config's WorkingDir", body("workdir") == (WORKDIR + "\n").encode()
              or body("workdir") == WORKDIR.encode(), body("workdir"))
        with open(busybox, "rb") as f:
            check("rootfs/bin/busybox is the layer's bytes", body("rootfs/bin/busybox") == f.read())
        check("rootfs/bin/sh is the symlink", stat.S_ISLNK(ents.get("rootfs/bin/sh", (0,))[0])
              and body("rootfs/bin/sh") == b"busybox")
        check("the second layer's whiteout removed rootfs/etc/motd",
              "rootfs/etc" in ents and "rootfs/etc/motd" not in ents
              and not any(".wh." in p for p in ents), sorted(ents))
        tool, link = ents.get("rootfs/opt/app/tool"), ents.get("rootfs/opt/app/tool-link")
        check("the setuid bit survives", tool and tool[0] & 0o7777 == 0o4755,
              oct(tool[0]) if tool else "missing")
        check("the hard link stays a hard link", tool and link and tool[1] == link[1]
              and tool[2] == 2 and link[2] == 2, "%s %s" % (tool and tool[:3], link and link[:3]))
        listing = subprocess.run(["cpio", "-it", "--quiet"], input=disks["layout"] or b"",
                                 capture_output=True)
        names = listing.stdout.decode().split()
        check("GNU cpio lists the customer ramdisk", listing.returncode == 0
              and "cmd" in names and "rootfs/bin/busybox" in names, listing.stderr.decode())

        # The same tree as a directory gives the same ramdisk: PCR2 depends on the file
        # system and cmd/env/workdir only, not on how the image was packed.
        os.makedirs(os.path.join(tree, "opt/app"))
        with open(os.path.join(tree, "opt/app/tool"), "w") as f:
            f.write("#!/bin/sh\necho tool\n")
        os.chmod(os.path.join(tree, "opt/app/tool"), 0o4755)
        os.link(os.path.join(tree, "opt/app/tool"), os.path.join(tree, "opt/app/tool-link"))
        args = ["--rootfs", tree, "--workdir", WORKDIR, "--blobs", blobs]
        for c in CMD:
            args += ["--cmd", c]
        for e in ENV:
            args += ["--env", e]
        eif = os.path.join(top, "rootfs.eif")
        rc, out, err = build(env, eif, *args)
        rds = ramdisks(eif) if rc == 0 else []
        same = rds and rds[1] == disks["layout"]
        if rc == 0 and not same:
            a, b = cpio_entries(rds[1]), ents
            diff = sorted(p for p in set(a) | set(b) if a.get(p) != b.get(p))[:8]
        else:
            diff = err
        check("--rootfs of the same tree gives the same customer ramdisk", rc == 0 and same,
              str(diff))

        # Broken images: each fails with E50 naming the problem, and writes nothing.
        def broken(name, mutate, want, uri=None):
            bad = os.path.join(top, "bad-" + name.replace(" ", "-"))
            shutil.copytree(layout, bad)
            mutate(bad)
            eif = os.path.join(top, "bad.eif")
            rc, out, err = build(env, eif, "--docker-uri", uri or bad, "--blobs", blobs)
            check("broken image (%s) fails with E50" % name, rc == 50 and "[ E50 ]" in err,
                  "rc %d: %s" % (rc, err))
            check("broken image (%s): the message says %r" % (name, want), want in err, err)
            check("broken image (%s) leaves no output file" % name, not os.path.exists(eif)
                  and not [f for f in os.listdir(top) if f.startswith("bad.eif")])

        def manifest_of(bad):
            with open(os.path.join(bad, "index.json")) as f:
                index = json.load(f)
            digest = index["manifests"][0]["digest"]
            with open(os.path.join(bad, "blobs/sha256", digest[7:])) as f:
                return index, json.load(f)

        def put_blob(bad, data):
            hexd = hashlib.sha256(data).hexdigest()
            with open(os.path.join(bad, "blobs/sha256", hexd), "wb") as f:
                f.write(data)
            return {"digest": "sha256:" + hexd, "size": len(data)}

        def with_config(bad, data):
            """Point the image at a new config blob, re-hashing manifest and index so that
            only the config itself is wrong."""
            index, manifest = manifest_of(bad)
            manifest["config"].update(put_blob(bad, data))
            index["manifests"][0].update(put_blob(bad, json.dumps(manifest).encode()))
            with open(os.path.join(bad, "index.json"), "w") as f:
                json.dump(index, f)

        def drop_layer(bad):
            _, manifest = manifest_of(bad)
            os.unlink(os.path.join(bad, "blobs/sha256", manifest["layers"][-1]["digest"][7:]))

        def edit_config(bad):
            _, manifest = manifest_of(bad)
            path = os.path.join(bad, "blobs/sha256", manifest["config"]["digest"][7:])
            with open(path, "rb") as f:
                data = f.read()
            with open(path, "wb") as f:
                f.write(data.replace(b"GREETING", b"GREETINX"))

        def no_command(bad):
            _, manifest = manifest_of(bad)
            with open(os.path.join(bad, "blobs/sha256", manifest["config"]["digest"][7:])) as f:
                config = json.load(f)
            config["config"].pop("Cmd", None)
            config["config"].pop("Entrypoint", None)
            with_config(bad, json.dumps(config).encode())

        broken("missing layer blob", drop_layer, "is missing from the image layout")
        broken("config bytes changed", edit_config, "is corrupt")
        broken("config not JSON", lambda b: with_config(b, b'{"architecture": "amd64", "con'),
               "image config is not valid JSON")
        # skopeo's docker-archive names nothing by digest (<diff_id hex>.tar layers, an
        # <image id>.json config): a byte flipped inside a layer member must be caught against
        # the config's rootfs.diff_ids, and an edited config against its name.
        def docker_variant(name, edit):
            with tarfile.open(docker_tar) as t:
                manifest = json.load(t.extractfile("manifest.json"))[0]
                members = [(m, t.extractfile(m).read() if m.isfile() else None)
                           for m in t.getmembers()]
            bad = os.path.join(top, "bad-" + name + ".tar")
            with tarfile.open(bad, "w", format=tarfile.PAX_FORMAT) as t:
                for m, data in members:
                    if data is not None:
                        data = edit(manifest, m.name, data)
                        t.addfile(m, io.BytesIO(data))
                    else:
                        t.addfile(m)
            return bad, manifest

        def flip_layer(manifest, member, data):
            if member != manifest["Layers"][0]:  # busybox: the middle is file data
                return data
            data = bytearray(data)
            data[len(data) // 2] ^= 0x20
            return bytes(data)

        def edit_docker_config(manifest, member, data):
            return data.replace(b"GREETING", b"GREETINX") if member == manifest["Config"] \
                else data

        for name, edit, want in (("a byte flipped in a layer", flip_layer, "rootfs.diff_ids"),
                                 ("an edited config", edit_docker_config, "image config")):
            bad, manifest = docker_variant(name.replace(" ", "-"), edit)
            eif = os.path.join(top, "bad.eif")
            rc, out, err = build(env, eif, "--docker-uri", "docker-archive:" + bad,
                                 "--blobs", blobs)
            what = manifest["Layers"][0] if edit is flip_layer else manifest["Config"]
            check("docker-archive with %s fails with E50" % name,
                  rc == 50 and "[ E50 ]" in err, "rc %d: %s" % (rc, err))
            check("docker-archive with %s: the message names %s and says %r"
                  % (name, what, want), what in err and want in err and "export" in err, err)
            check("docker-archive with %s leaves no output file" % name,
                  not os.path.exists(eif)
                  and not [f for f in os.listdir(top) if f.startswith("bad.eif")])
            if os.path.exists(eif):  # a wrong build must not spoil the checks below
                os.unlink(eif)

        rc, out, err = build(env, os.path.join(top, "bad.eif"), "--docker-uri",
                             "oci-archive:" + os.path.join(top, "no-such.tar"), "--blobs", blobs)
        check("a missing archive fails with E50 and no output", rc == 50
              and not os.path.exists(os.path.join(top, "bad.eif")), err)

        # No command: nitro-cli's E48, not E50.
        bad = os.path.join(top, "bad-no-cmd")
        shutil.copytree(layout, bad)
        no_command(bad)
        eif = os.path.join(top, "bad.eif")
        rc, out, err = build(env, eif, "--docker-uri", bad, "--blobs", blobs)
        check("an image without Cmd or Entrypoint fails with E48", rc == 48 and "[ E48 ]" in err,
              "rc %d: %s" % (rc, err))
        check("no command: the message says so", "neither Cmd nor Entrypoint" in err, err)
        check("no command leaves no output file", not os.path.exists(eif))

        # A failed build leaves an existing output file as it was.
        with open(eif, "wb") as f:
            f.write(b"previous")
        rc, out, err = build(env, eif, "--docker-uri", bad, "--blobs", blobs)
        with open(eif, "rb") as f:
            check("a failed build leaves an existing output file alone",
                  rc != 0 and f.read() == b"previous", err)

    print("1..%d" % len(results))
    bad = 0
    for i, (name, ok, detail) in enumerate(results, 1):
        print("%s %d - %s" % ("ok" if ok else "not ok", i, name))
        if not ok:
            bad += 1
            for line in str(detail).splitlines()[:20]:
                print("#   " + line)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
