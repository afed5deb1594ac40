#!/usr/bin/env python3
"""Parent-side driver for tests/e2e/test_20_vsock.sh: talks to an enclave through its vsock
Unix socket (CONNECT <port>) or a TCP forwarder, with hashed payloads. Exit status 0 = as
expected; prints one line saying what happened."""
import hashlib
import os
import socket
import sys
import threading


def connect(uds, port, timeout=60):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(uds)
    s.sendall(f"CONNECT {port}\n".encode())
    line = b""
    while not line.endswith(b"\n"):
        b = s.recv(1)
        if not b:
            s.close()
            return None
        line += b
    if not line.startswith(b"OK "):
        s.close()
        return None
    return s


def echo_roundtrip(s, nbytes):
    """Send nbytes of random data while reading the echo; return (sent hash, received hash)."""
    data = os.urandom(nbytes)
    got = hashlib.sha256()
    received = [0]

    def reader():
        while True:
            b = s.recv(65536)
            if not b:
                return
            got.update(b)
            received[0] += len(b)
    t = threading.Thread(target=reader)
    t.start()
    view = memoryview(data)
    for off in range(0, nbytes, 65536):
        s.sendall(view[off:off + 65536])
    s.shutdown(socket.SHUT_WR)
    t.join(120)
    s.close()
    return hashlib.sha256(data).hexdigest(), got.hexdigest(), received[0]


def cmd_echo(uds, port, nconn, nbytes):
    results = []

    def one():
        s = connect(uds, int(port))
        if s is None:
            results.append("refused")
            return
        want, got, n = echo_roundtrip(s, nbytes)
        results.append("ok" if want == got else f"mismatch after {n} bytes")
    threads = [threading.Thread(target=one) for _ in range(nconn)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    ok = results.count("ok")
    print(f"echo: {ok}/{nconn} connections returned {nbytes} bytes intact {sorted(set(results))}")
    return 0 if ok == nconn else 1


def cmd_refused(uds, port):
    s = connect(uds, int(port), timeout=30)
    if s is None:
        print(f"connect to closed port {port}: refused")
        return 0
    print(f"connect to closed port {port}: unexpectedly accepted")
    return 1


def cmd_tcp(host, port, nbytes):
    s = socket.create_connection((host, int(port)), timeout=60)
    want, got, n = echo_roundtrip(s, nbytes)
    print(f"tcp forward: {n} bytes back, {'intact' if want == got else 'CORRUPT'}")
    return 0 if want == got else 1


def cmd_ctl(uds, word):
    """Send WORD to the test init's control port 5001 (quit, panic, exit: tests/e2e/vsock-init.c)."""
    s = connect(uds, 5001)
    if s is None:
        print(f"{word}: control port refused")
        return 1
    s.sendall(word.encode() + b"\n")
    s.close()
    print(f"{word}: sent")
    return 0


def cmd_listen(path, out):
    """Accept one connection on a Unix socket (the parent's vsock port) and save what arrives."""
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(4)
    srv.settimeout(300)
    c, _ = srv.accept()
    data = b""
    while True:
        b = c.recv(4096)
        if not b:
            break
        data += b
    with open(out, "wb") as f:
        f.write(data)
    return 0


def main(argv):
    cmd = argv[1]
    if cmd == "echo":
        return cmd_echo(argv[2], argv[3], int(argv[4]), int(argv[5]))
    if cmd == "refused":
        return cmd_refused(argv[2], argv[3])
    if cmd == "tcp":
        return cmd_tcp(argv[2], argv[3], int(argv[4]))
    if cmd == "quit":
        return cmd_ctl(argv[2], "quit")
    if cmd == "ctl":
        return cmd_ctl(argv[2], argv[3])
    if cmd == "listen":
        return cmd_listen(argv[2], argv[3])
    print(f"unknown command {cmd}")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
