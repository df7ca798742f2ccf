#!/usr/bin/python3
"""Small, bounded network probes for image/test-boot.sh (loopback only).

  probe.py freeport                      print a free TCP port on 127.0.0.1
  probe.py banner PORT DEADLINE_S        wait for a 220 banner; print it and
                                         the seconds it took
  probe.py send PORT N                   deliver N messages (one session
                                         each) with smtplib; exit 1 unless
                                         every one got 250
  probe.py http PORT PATH [TOKEN]        GET; print "STATUS BODY"
  probe.py drain PORT PATH [TOKEN]       GET a (big, streamed) body; print
                                         "STATUS BYTES LINES SECONDS"
  probe.py metric PORT TOKEN NAME       GET /metrics; print NAME's value
  probe.py count PORT TOKEN KEY          GET /api/v1/stats; print the largest
                                         integer under a key named KEY
  probe.py monitor SOCKET COMMAND        send one command to the qemu monitor
  probe.py jsonl-sum KEY                 sum of KEY over the JSON lines on stdin

With PROBE_CAFILE=FILE in the environment the HTTP commands speak HTTPS and
check the server's certificate against FILE (its name must cover 127.0.0.1).

Every socket operation has a timeout; nothing here waits for ever.
"""
import http.client
import json
import os
import smtplib
import socket
import ssl
import sys
import time

HOST = "127.0.0.1"


def freeport():
    with socket.socket() as s:
        s.bind((HOST, 0))
        print(s.getsockname()[1])


def banner(port, deadline_s):
    # qemu's user networking accepts the connection before the guest has
    # booted, so an open port proves nothing: wait for the 220 line itself.
    start = time.monotonic()
    while time.monotonic() - start < deadline_s:
        try:
            with socket.create_connection((HOST, port), timeout=2) as s:
                s.settimeout(2)
                line = s.recv(512).decode("latin-1").strip()
                if line.startswith("220"):
                    s.sendall(b"QUIT\r\n")
                    print(f"{time.monotonic() - start:.2f} {line}")
                    return 0
        except OSError:
            pass
        time.sleep(0.25)
    print(f"no 220 banner on port {port} within {deadline_s} s", file=sys.stderr)
    return 1


def send(port, n):
    ok = 0
    for i in range(n):
        msg = (f"From: trap-test@example.org\r\nTo: spamtrap{i}@example.net\r\n"
               f"Subject: boot test {i}\r\n\r\nbuy now {i}\r\n")
        try:
            with smtplib.SMTP(HOST, port, local_hostname="boottest.example.org",
                              timeout=20) as c:
                c.ehlo()
                c.mail("trap-test@example.org")
                code, _ = c.rcpt(f"spamtrap{i}@example.net")
                if code != 250:
                    print(f"message {i}: RCPT got {code}", file=sys.stderr)
                    continue
                code, reply = c.data(msg.encode())
                if code == 250:
                    ok += 1
                else:
                    print(f"message {i}: DATA got {code} {reply!r}", file=sys.stderr)
        except (OSError, smtplib.SMTPException) as e:
            print(f"message {i}: {e!r}", file=sys.stderr)
    print(f"{ok} of {n} messages accepted")
    return 0 if ok == n else 1


def connect(port, timeout):
    ca = os.environ.get("PROBE_CAFILE")
    if ca:
        ctx = ssl.create_default_context(cafile=ca)
        return http.client.HTTPSConnection(HOST, port, timeout=timeout, context=ctx)
    return http.client.HTTPConnection(HOST, port, timeout=timeout)


def get(port, path, token=None):
    c = connect(port, 10)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    c.request("GET", path, headers=headers)
    r = c.getresponse()
    body = r.read().decode("utf-8", "replace")
    c.close()
    return r.status, body


def http_cmd(port, path, token=None):
    try:
        status, body = get(port, path, token)
    except (OSError, http.client.HTTPException) as e:
        print(f"000 {e!r}")
        return 1
    print(status, body.replace("\n", " ")[:2000])
    return 0


def drain(port, path, token=None):
    """Streams a (big) response to nowhere: status, bytes, lines, seconds."""
    t0 = time.monotonic()
    try:
        c = connect(port, 600)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        c.request("GET", path, headers=headers)
        r = c.getresponse()
        size = lines = 0
        while True:
            piece = r.read(1 << 16)
            if not piece:
                break
            size += len(piece)
            lines += piece.count(b"\n")
        c.close()
    except (OSError, http.client.HTTPException) as e:
        print(f"000 0 0 {time.monotonic() - t0:.1f} {e!r}")
        return 1
    print(f"{r.status} {size} {lines} {time.monotonic() - t0:.1f}")
    return 0 if r.status == 200 else 1


def metric(port, token, name):
    """Prints the value of one Prometheus sample line named name."""
    try:
        status, body = get(port, "/metrics", token)
    except (OSError, http.client.HTTPException) as e:
        print(f"-1 {e!r}")
        return 1
    for line in body.splitlines():
        if line.startswith(name + " "):
            print(line.split()[1])
            return 0
    print(-1)
    return 1


def largest(obj, key):
    best = None
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == key and isinstance(v, int) and not isinstance(v, bool):
                best = v if best is None else max(best, v)
            sub = largest(v, key)
            if sub is not None:
                best = sub if best is None else max(best, sub)
    elif isinstance(obj, list):
        for v in obj:
            sub = largest(v, key)
            if sub is not None:
                best = sub if best is None else max(best, sub)
    return best


def count(port, token, key):
    try:
        status, body = get(port, "/api/v1/stats", token)
        value = largest(json.loads(body), key) if status == 200 else None
    except (OSError, http.client.HTTPException, ValueError) as e:
        print(f"-1 {e!r}")
        return 1
    print(-1 if value is None else value)
    return 0 if value is not None else 1


def monitor(path, command):
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(path)
        s.recv(4096)  # the greeting
        s.sendall(command.encode() + b"\n")
        time.sleep(0.2)
    return 0


def main(argv):
    cmd, args = argv[1], argv[2:]
    if cmd == "freeport":
        return freeport() or 0
    if cmd == "banner":
        return banner(int(args[0]), float(args[1]))
    if cmd == "send":
        return send(int(args[0]), int(args[1]))
    if cmd == "http":
        return http_cmd(int(args[0]), args[1], args[2] if len(args) > 2 else None)
    if cmd == "drain":
        return drain(int(args[0]), args[1], args[2] if len(args) > 2 else None)
    if cmd == "metric":
        return metric(int(args[0]), args[1], args[2])
    if cmd == "count":
        return count(int(args[0]), args[1], args[2])
    if cmd == "jsonl-sum":
        total = 0
        for line in sys.stdin:
            if line.strip():
                v = json.loads(line).get(args[0], 0)
                total += v if isinstance(v, int) else 0
        print(total)
        return 0
    if cmd == "monitor":
        return monitor(args[0], args[1])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
