#!/usr/bin/env python3
"""cloister vsock-forward, both directions, against stand-ins for the enclave's vsock socket.

The stand-in speaks the host side of the protocol exactly as the monitor's engine does
(CONNECT <port>\n -> OK <n>\n, then raw bytes), so this checks the forwarder's framing and
relaying without a VM. Prints TAP."""
import hashlib
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

CLOISTER = os.environ.get("CLOISTER", os.path.join(os.path.dirname(__file__), "../../build/src/cli/cloister"))
results = []


def check(name, cond, detail=""):
    results.append((name, bool(cond), detail))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_for(pred, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.05)
    return False


def recv_all(s):
    out = bytearray()
    while True:
        b = s.recv(65536)
        if not b:
            return bytes(out)
        out += b


def fake_enclave(uds, seen_ports):
    """Accept CONNECT lines; answer OK; echo the bytes back reversed in order of arrival."""
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(uds)
    srv.listen(32)

    def serve(c):
        line = b""
        while not line.endswith(b"\n"):
            line += c.recv(1)
        seen_ports.append(int(line.split()[1]))
        c.sendall(b"OK 1073741824\n")
        data = recv_all(c)
        c.sendall(hashlib.sha256(data).hexdigest().encode())
        c.close()

    def loop():
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(c,), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()
    return srv


def main():
    tmp = tempfile.mkdtemp(prefix="cloister-fwd-")
    uds = os.path.join(tmp, "e.vsock")
    seen = []
    srv = fake_enclave(uds, seen)
    port = free_port()
    fwd = subprocess.Popen([CLOISTER, "vsock-forward", "--uds", uds, "--tcp-listen",
                            f"127.0.0.1:{port}", "--vsock-port", "5005"],
                           stderr=subprocess.DEVNULL)
    try:
        def can_connect():
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return True
            except OSError:
                return False
        check("tcp -> vsock forwarder listens", wait_for(can_connect))
        seen.clear()
        payload = os.urandom(3 * 1024 * 1024)
        digests = []

        def client():
            c = socket.create_connection(("127.0.0.1", port), timeout=20)
            c.sendall(payload)
            c.shutdown(socket.SHUT_WR)
            digests.append(recv_all(c).decode())
            c.close()
        threads = [threading.Thread(target=client) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        want = hashlib.sha256(payload).hexdigest()
        check("16 concurrent tcp clients each reach the enclave port with 3 MiB intact",
              len(digests) == 16 and all(d == want for d in digests), f"{len(digests)} answers")
        check("every connection asked for the right vsock port",
              len(seen) >= 16 and set(seen) == {5005}, str(seen[:4]))
    finally:
        fwd.terminate()
        fwd.wait(10)
        srv.close()

    # enclave -> parent port 6006 -> TCP echo-hash server
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(8)
    tport = tcp.getsockname()[1]

    def tcp_serve():
        while True:
            try:
                c, _ = tcp.accept()
            except OSError:
                return
            data = recv_all(c)
            c.sendall(hashlib.sha256(data).hexdigest().encode())
            c.close()
    threading.Thread(target=tcp_serve, daemon=True).start()
    fwd = subprocess.Popen([CLOISTER, "vsock-forward", "--uds", uds, "--vsock-listen", "6006",
                            "--tcp-connect", f"127.0.0.1:{tport}"], stderr=subprocess.DEVNULL)
    try:
        path = uds + "_6006"
        def uds_listening():
            # The socket file appears at bind(), before listen(): probe with a connect.
            try:
                probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                probe.connect(path)
                probe.close()
                return True
            except OSError:
                return False
        check("vsock -> tcp forwarder listens on <uds>_<port>", wait_for(uds_listening))
        payload = os.urandom(2 * 1024 * 1024)
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.settimeout(20)
        c.connect(path)
        c.sendall(payload)
        c.shutdown(socket.SHUT_WR)
        got = recv_all(c).decode()
        c.close()
        check("an enclave connection reaches the TCP destination intact",
              got == hashlib.sha256(payload).hexdigest())
    finally:
        fwd.terminate()
        fwd.wait(10)
        tcp.close()

    r = subprocess.run([CLOISTER, "vsock-forward", "--uds", uds, "--tcp-listen", "1"],
                       capture_output=True, text=True)
    check("inconsistent flags are refused with E02", r.returncode == 2 and "[ E02 ]" in r.stderr,
          r.stderr[:200])

    print(f"1..{len(results)}")
    for i, (name, ok, detail) in enumerate(results, 1):
        print(f"{'ok' if ok else 'not ok'} {i} - {name}")
        if not ok and detail:
            print(f"# {detail}")
    return 0 if all(ok for _, ok, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
