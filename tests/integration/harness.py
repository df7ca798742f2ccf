"""Starts a spamsink binary on a loopback port for a test and stops it.

Loopback only; the process is stopped by its pid; every wait is bounded.
"""
import ctypes
import errno
import os
import re
import select
import signal
import socket
import struct
import subprocess
import tempfile
import time

BUILD = os.environ.get("SPAMSINK_BUILD_DIR") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build")
SPAMSINK = os.path.join(BUILD, "spamsink")
# "asio" or "io_uring": the executor every started spamsink is told to use
# (unset: the binary's default, "auto").
EXECUTOR = os.environ.get("SPAMSINK_EXECUTOR", "")


def executor_args():
    return ["--server-executor", EXECUTOR] if EXECUTOR else []


def deny_io_uring():
    """In a child before exec (x86_64): a seccomp filter that fails
    io_uring_setup with EPERM, as kernel.io_uring_disabled or a container's
    profile would. Affects only that child and its descendants."""
    libc = ctypes.CDLL(None, use_errno=True)

    def insn(code, k, jt=0, jf=0):
        return struct.pack("HBBI", code, jt, jf, k)
    ld_abs, jeq, ret = 0x20, 0x15, 0x06
    prog = b"".join([
        insn(ld_abs, 4),                    # A = arch
        insn(jeq, 0xC000003E, 0, 3),        # x86_64? else allow
        insn(ld_abs, 0),                    # A = syscall number
        insn(jeq, 425, 0, 1),               # io_uring_setup?
        insn(ret, 0x00050000 | errno.EPERM),  # fail it with EPERM
        insn(ret, 0x7FFF0000),              # allow
    ])
    buf = ctypes.create_string_buffer(prog)

    class Fprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
    fprog = Fprog(len(prog) // 8, ctypes.addressof(buf))
    if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS")
    if libc.prctl(22, 2, ctypes.byref(fprog), 0, 0) != 0:  # SECCOMP filter
        raise OSError(ctypes.get_errno(), "PR_SET_SECCOMP")


class Sink:
    """One spamsink process with its own database in a temporary dir."""

    def __init__(self, *args, config=None, preexec_fn=None):
        self.dir = tempfile.TemporaryDirectory(prefix="spamsink-test-")
        self.db = os.path.join(self.dir.name, "ledger.db")
        cmd = [SPAMSINK, "--listen", "127.0.0.1:0", "--hostname",
               "mx.test.example", "--db", self.db,
               "--ledger-flush-interval", "0.05", "--api-enabled", "false"]
        if "--server-executor" not in args:
            cmd += executor_args()
        if config is not None:
            path = os.path.join(self.dir.name, "spamsink.toml")
            with open(path, "w") as f:
                f.write(config)
            cmd += ["--config", path]
        cmd += list(args)
        self.log_path = os.path.join(self.dir.name, "stderr.log")
        self.log = open(self.log_path, "w+")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                     stderr=self.log, preexec_fn=preexec_fn)
        self.port = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.port is None:
            if self.proc.poll() is not None:
                raise RuntimeError("spamsink exited: " + self.stderr())
            m = re.search(r"event=listening address=127\.0\.0\.1:(\d+)",
                          self.stderr())
            if m:
                self.port = int(m.group(1))
            else:
                time.sleep(0.02)
        if self.port is None:
            self.stop()
            raise RuntimeError("spamsink did not start: " + self.stderr())

    def stderr(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def stop(self, sig=signal.SIGTERM, timeout=20):
        """Stops the process we started (by pid); returns its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode

    def export(self, fmt="jsonl"):
        # Every record, connect-only ones too (exports leave those out by
        # default).
        out = subprocess.run([SPAMSINK, "export", "--db", self.db, "--format",
                              fmt, "--min-messages", "0"],
                             capture_output=True, text=True, timeout=30)
        if out.returncode != 0:
            raise RuntimeError("export failed: " + out.stderr)
        return out.stdout

    def close(self):
        self.stop()
        self.log.close()
        self.dir.cleanup()


class Conn:
    """A raw SMTP connection with bounded reads."""

    def __init__(self, port, source=None, timeout=10):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if source:
            self.s.bind((source, 0))
        self.s.settimeout(timeout)
        self.s.connect(("127.0.0.1", port))
        self.buf = b""

    def send(self, data):
        self.s.sendall(data if isinstance(data, bytes) else data.encode())

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("utf-8", "replace")

    def reply(self):
        """All lines of one reply, joined with newlines."""
        lines = [self.line()]
        while len(lines[-1]) >= 4 and lines[-1][3] == "-":
            lines.append(self.line())
        return "\n".join(lines)

    def closed(self, timeout=10):
        """True if the server closes the connection within timeout."""
        self.s.settimeout(timeout)
        try:
            while True:
                chunk = self.s.recv(65536)
                if not chunk:
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def close(self):
        self.s.close()


def transaction(port, source=None):
    """A normal transaction on a new connection; returns the final reply."""
    c = Conn(port, source)
    try:
        assert c.reply().startswith("220 ")
        c.send("EHLO client.test.example\r\n")
        assert c.reply().startswith("250")
        c.send("MAIL FROM:<s@test.example>\r\n")
        assert c.reply().startswith("250")
        c.send("RCPT TO:<r@test.example>\r\n")
        assert c.reply().startswith("250")
        c.send("DATA\r\n")
        assert c.reply().startswith("354")
        c.send("Subject: ok\r\n\r\nstill alive\r\n.\r\n")
        final = c.reply()
        c.send("QUIT\r\n")
        c.reply()
        return final
    finally:
        c.close()
