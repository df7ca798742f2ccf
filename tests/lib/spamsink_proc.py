"""Start and stop a spamsink process for the Python end-to-end tests.

One helper for every e2e suite (api, dnsbl, console, traps): the child
runs with its stderr in a file, the test waits until the listeners it
needs have logged their ephemeral ports, and the child is stopped by its
own pid (SIGTERM, then SIGKILL after a bound). Every wait is bounded.
"""

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

BUILD = os.environ.get("SPAMSINK_BUILD_DIR", "")
SPAMSINK = os.path.join(BUILD, "spamsink")

# SPAMSINK_EXECUTOR ("asio", "io_uring"): the executor the binary must use.
EXECUTOR_ARGS = (["--server-executor", os.environ["SPAMSINK_EXECUTOR"]]
                 if os.environ.get("SPAMSINK_EXECUTOR") else [])

# The log event that carries each listener's address.
EVENTS = {
    "smtp": "listening",
    "api": "api_listening",
    "dns": "dnsbl_listening",
    "traps": "traps_listening",
}


class Proc:
    """A child process with its output in a file; stop() by pid."""

    def __init__(self, argv, log_path, env=None, stdout=None):
        self.log_path = log_path
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL,
            stdout=self.log if stdout is None else stdout, stderr=self.log,
            env=env)
        self.pid = self.proc.pid

    def output(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    # The e2e suites call it stderr(): the same text.
    stderr = output

    def stop(self, sig=signal.SIGTERM, timeout=20):
        """Signals the child (if alive) and returns its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(timeout=5)
        if not self.log.closed:
            self.log.close()
        return code


class Spamsink(Proc):
    """spamsink started with `args`; waits for the listeners in `want`
    (keys of EVENTS) and keeps their ports in self.ports."""

    def __init__(self, args, log_path, want=("smtp", "api"), timeout=20,
                 env=None):
        super().__init__([SPAMSINK] + list(args), log_path, env=env,
                         stdout=subprocess.DEVNULL)
        self.ports = {}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("spamsink exited: " + self.output())
            text = self.output()
            for key in want:
                m = re.search(r"event=%s address=\S+:(\d+)" % EVENTS[key],
                              text)
                if m:
                    self.ports[key] = int(m.group(1))
            if all(k in self.ports for k in want):
                return
            time.sleep(0.02)
        self.stop(signal.SIGKILL)
        raise RuntimeError("spamsink did not start: " + self.output())

    def port(self, key):
        return self.ports.get(key)

    def request(self, path, headers=None):
        """(status, headers, body) of a GET to the API."""
        url = "http://127.0.0.1:%d%s" % (self.ports["api"], path)
        req = urllib.request.Request(url, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()

    def get_json(self, path, headers=None):
        status, _, body = self.request(path, headers)
        assert status == 200, (path, status, body)
        return json.loads(body)


class Smtp:
    """A plain SMTP client for the e2e suites: one connection from `source`
    (a loopback address, or None), replies read line by line with a bound
    on the lines of one reply and a socket timeout on each read."""

    def __init__(self, port, host="127.0.0.1", source=None, timeout=20):
        self.sock = socket.create_connection(
            (host, port), timeout=timeout,
            source_address=(source, 0) if source else None)
        self.file = self.sock.makefile("rb")

    def reply(self):
        """The code of the next reply (the last line of a multi-line one)."""
        for _ in range(100):
            line = self.file.readline()
            if not line:
                raise RuntimeError("connection closed")
            if line[3:4] != b"-":
                return int(line[:3])
        raise RuntimeError("a reply of more than 100 lines")

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def cmd(self, text, want=None):
        """Sends one command line; returns the reply code, or raises when
        it is not `want` (if given)."""
        self.send(text + "\r\n")
        code = self.reply()
        if want is not None and code != want:
            raise RuntimeError("%s -> %d" % (text, code))
        return code

    def close(self):
        self.file.close()
        self.sock.close()


def send_one(port, host="127.0.0.1", source=None):
    """One short message in one session (EHLO, MAIL, RCPT, DATA, QUIT)."""
    c = Smtp(port, host, source, timeout=10)
    c.reply()
    for line in ["EHLO client.test", "MAIL FROM:<a@client.test>",
                 "RCPT TO:<b@sink.test>", "DATA"]:
        c.cmd(line)
    c.send(b"Subject: hi\r\n\r\nbuy now\r\n.\r\n")
    c.reply()
    c.cmd("QUIT")
    c.close()
