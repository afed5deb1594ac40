#!/usr/bin/env python3
"""Parent-side client of the demo enclave app (guest/demo/demo.c, docs/demo.md).

Talks to the app's vsock port through the enclave's host endpoint (docs/vsock.md: connect to
the Unix socket, send "CONNECT <port>\\n", read "OK <n>\\n"), one request per connection.

  demo-client.py --uds PATH wait [SECONDS]          until the app answers ECHO (prints seconds)
  demo-client.py --uds PATH echo TEXT               prints the echoed text
  demo-client.py --uds PATH attest NONCE_HEX [USER_DATA_HEX] --out FILE
  demo-client.py --uds PATH random | info | quit
  demo-client.py --uds PATH pcr N
  demo-client.py --uds PATH extend N DATA_HEX
  demo-client.py --uds PATH lock N
  demo-client.py --uds PATH raw LINE                 prints the raw answer line

Exit status: 0 on "OK" (or the echo), 1 when the app answered "ERR …" (printed on stderr),
2 when it could not be reached or the answer was malformed.
"""
import argparse
import socket
import sys
import time


class Unreachable(Exception):
    pass


def connect(uds, port, timeout):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(uds)
        s.sendall(f"CONNECT {port}\n".encode())
        line = b""
        while not line.endswith(b"\n"):
            b = s.recv(1)
            if not b:
                raise Unreachable(f"nothing listens on vsock port {port} (the monitor closed {uds})")
            line += b
        if not line.startswith(b"OK "):
            raise Unreachable(f"the monitor answered {line!r} to CONNECT {port}")
        return s
    except OSError as e:
        s.close()
        raise Unreachable(f"cannot reach {uds}: {e}") from e
    except Unreachable:
        s.close()
        raise


def read_line(s):
    line = b""
    while not line.endswith(b"\n"):
        b = s.recv(1)
        if not b:
            raise Unreachable(f"the app closed the connection after {line!r}")
        line += b
    return line[:-1].decode(errors="replace")


def read_exact(s, n):
    buf = bytearray()
    while len(buf) < n:
        b = s.recv(min(65536, n - len(buf)))
        if not b:
            raise Unreachable(f"the app closed the connection after {len(buf)} of {n} bytes")
        buf += b
    return bytes(buf)


def request(args, line):
    s = connect(args.uds, args.port, args.timeout)
    try:
        s.sendall(line.encode() + b"\n")
        return s, read_line(s)
    except OSError as e:
        s.close()
        raise Unreachable(f"request {line.split()[0]!r} failed: {e}") from e


def ok_or_err(answer):
    if answer.startswith("OK"):
        return answer[3:]
    if answer.startswith("ERR "):
        print(f"the enclave app answered: {answer[4:]}", file=sys.stderr)
        sys.exit(1)
    raise Unreachable(f"malformed answer {answer!r}")


def simple(args, line):
    s, answer = request(args, line)
    s.close()
    print(ok_or_err(answer))


def cmd_wait(args):
    deadline = time.monotonic() + float(args.rest[0] if args.rest else 120)
    start = time.monotonic()
    last = None
    while time.monotonic() < deadline:
        try:
            s, answer = request(args, "ECHO ping")
            s.close()
            if answer == "ping":
                print(f"{time.monotonic() - start:.2f}")
                return
            last = f"unexpected answer {answer!r}"
        except Unreachable as e:
            last = str(e)
        time.sleep(0.2)
    raise Unreachable(f"the app did not answer within the deadline: {last}")


def cmd_attest(args):
    if not args.rest or len(args.rest) > 2 or not args.out:
        raise SystemExit("usage: attest NONCE_HEX [USER_DATA_HEX] --out FILE")
    s, answer = request(args, "ATTEST " + " ".join(args.rest))
    try:
        n = int(ok_or_err(answer))
        doc = read_exact(s, n)
    finally:
        s.close()
    with open(args.out, "wb") as f:
        f.write(doc)
    print(f"{n}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--uds", required=True, help="the enclave's vsock Unix socket")
    p.add_argument("--port", type=int, default=5000)
    p.add_argument("--timeout", type=float, default=60)
    p.add_argument("--out", help="attest: where to write the document")
    p.add_argument("cmd")
    p.add_argument("rest", nargs="*")
    args = p.parse_args()
    try:
        if args.cmd == "wait":
            cmd_wait(args)
        elif args.cmd == "echo":
            s, answer = request(args, "ECHO " + " ".join(args.rest))
            s.close()
            print(answer)
        elif args.cmd == "attest":
            cmd_attest(args)
        elif args.cmd in ("random", "info", "quit"):
            simple(args, args.cmd.upper())
        elif args.cmd in ("pcr", "lock") and len(args.rest) == 1:
            simple(args, f"{args.cmd.upper()} {args.rest[0]}")
        elif args.cmd == "extend" and len(args.rest) == 2:
            simple(args, f"EXTEND {args.rest[0]} {args.rest[1]}")
        elif args.cmd == "raw":
            s, answer = request(args, " ".join(args.rest))
            s.close()
            print(answer)
        else:
            p.error(f"unknown command or wrong arguments: {args.cmd} {' '.join(args.rest)}")
    except Unreachable as e:
        print(f"demo-client: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
