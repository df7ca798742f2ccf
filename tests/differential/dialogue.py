"""Plays SMTP dialogues against a server and records its replies.

A dialogue is a list of steps; each step sends bytes in one write and says
how many replies it expects (the reader waits for that many, for the
connection to close, or for a per-step timeout). Replies are recorded as
text: the lines of a multi-line reply joined by "\\n", without CR LF.

Corpus text format (corpus/*.txt):
  == name          starts a dialogue
  C: line          a command line (CR LF added), sent alone, one reply
  D: line          a line that gets no reply (message text), sent alone
  P: line          a command line added to a pipelined batch, one reply
  Q: line          a no-reply line (message text) added to the batch
  R: bytes         raw bytes (escapes \\r \\n \\t \\\\ \\xHH, {N*c} = c
                   repeated N times), no reply expected
  R1: bytes        raw bytes expecting one reply (R2: .. R9: that many)
  T:               STARTTLS (one reply), then a TLS handshake if it was 220
  W: seconds       waits that long, then reads what came (idle timeout)
  # comment
A batch (P:/Q: lines) is sent as one write when the next other line or the
end of the dialogue comes. A QUIT is sent after the last step unless the
server has closed; then everything up to the close is read.
"""
import re
import select
import socket
import ssl
import time

STEP_TIMEOUT = 6.0  # Postfix sleeps 1 s per error past its soft limit


def expand(text):
    """Expands escapes and {N*c} repetitions of corpus text."""
    text = re.sub(r"\{(\d+)\*(.)\}", lambda m: m.group(2) * int(m.group(1)),
                  text)
    out = bytearray()
    i = 0
    raw = text.encode("utf-8")
    while i < len(raw):
        c = raw[i:i + 1]
        if c == b"\\" and i + 1 < len(raw):
            n = raw[i + 1:i + 2]
            if n == b"x":
                out += bytes([int(raw[i + 2:i + 4], 16)])
                i += 4
                continue
            out += {b"r": b"\r", b"n": b"\n", b"t": b"\t"}.get(n, n)
            i += 2
            continue
        out += c
        i += 1
    return bytes(out)


class Dialogue:
    def __init__(self, name):
        self.name = name
        self.steps = []  # (kind, bytes, expected replies); kind: send/tls/wait

    def send(self, data, replies):
        self.steps.append(("send", data, replies))
        return self

    def cmd(self, line):
        return self.send(line.encode() + b"\r\n", 1)

    def text(self):
        return "\n".join(f"{k} {d!r} {n}" for k, d, n in self.steps)


def parse(text, source="?"):
    """Parses corpus text into dialogues."""
    dialogues = []
    cur = None
    batch, batch_n = b"", 0

    def flush():
        nonlocal batch, batch_n
        if batch:
            cur.send(batch, batch_n)
        batch, batch_n = b"", 0

    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("== "):
            if cur:
                flush()
            cur = Dialogue(line[3:].strip())
            dialogues.append(cur)
            continue
        m = re.match(r"(C|D|P|Q|R[1-9]?|T|W):( ?)(.*)$", line)
        if not m or cur is None:
            raise ValueError(f"{source}:{lineno}: bad line {line!r}")
        kind, body = m.group(1), m.group(3)
        if kind in ("P", "Q"):
            batch += expand(body) + b"\r\n"
            batch_n += kind == "P"
            continue
        flush()
        if kind == "C":
            cur.send(expand(body) + b"\r\n", 1)
        elif kind == "D":
            cur.send(expand(body) + b"\r\n", 0)
        elif kind == "R":
            cur.send(expand(body), 0)
        elif kind.startswith("R"):
            cur.send(expand(body), int(kind[1:]))
        elif kind == "T":
            cur.steps.append(("tls", b"STARTTLS\r\n", 1))
        elif kind == "W":
            cur.steps.append(("wait", b"", float(body)))
    if cur:
        flush()
    return dialogues


class Replies(list):
    """The replies of a dialogue, and for each one (not for the <...>
    markers) the seconds from the connection to its arrival."""

    def __init__(self):
        super().__init__()
        self.times = []


class _Conn:
    def __init__(self, port, source=None):
        self.sock = socket.create_connection(
            ("127.0.0.1", port), 5,
            source_address=(source, 0) if source else None)
        self.sock.setblocking(False)
        self.buf = b""
        self.closed = False
        self.replies = Replies()
        self.started = time.monotonic()

    def _read(self, deadline):
        """Reads what is there, waiting until deadline for something."""
        while not self.closed:
            if isinstance(self.sock, ssl.SSLSocket) and self.sock.pending():
                pass
            else:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                r, _, _ = select.select([self.sock], [], [], left)
                if not r:
                    return False
            try:
                data = self.sock.recv(65536)
            except (ssl.SSLWantReadError, BlockingIOError):
                continue
            except (ConnectionResetError, BrokenPipeError, ssl.SSLError,
                    OSError):
                data = b""
            if not data:
                self.closed = True
                return True
            self.buf += data
            return True
        return False

    def _take_replies(self):
        n = 0
        while True:
            lines = []
            pos = 0
            done = False
            while True:
                end = self.buf.find(b"\r\n", pos)
                if end < 0:
                    break
                line = self.buf[pos:end]
                pos = end + 2
                lines.append(line.decode("utf-8", "replace"))
                if not re.match(rb"^\d{3}-", line):
                    done = True
                    break
            if not done:
                return n
            self.buf = self.buf[pos:]
            self.replies.append("\n".join(lines))
            self.replies.times.append(time.monotonic() - self.started)
            n += 1

    def expect(self, count, timeout=STEP_TIMEOUT):
        got = self._take_replies()
        deadline = time.monotonic() + timeout
        while got < count and not self.closed:
            if not self._read(deadline):
                break
            got += self._take_replies()
        if got < count and not self.closed:
            self.replies.append("<no reply>")

    def send(self, data):
        if self.closed:
            return
        try:
            if isinstance(self.sock, ssl.SSLSocket):
                self.sock.setblocking(True)
                self.sock.sendall(data)
                self.sock.setblocking(False)
            else:
                self.sock.setblocking(True)
                self.sock.sendall(data)
                self.sock.setblocking(False)
        except OSError:
            self.closed = True

    def starttls(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        self.sock.setblocking(True)
        self.sock.settimeout(10)
        try:
            self.sock = ctx.wrap_socket(self.sock)
        except (ssl.SSLError, OSError) as e:
            self.replies.append("<tls failed: %s>" % type(e).__name__)
            self.closed = True
            return
        self.sock.setblocking(False)
        self.replies.append("<tls %s>" % self.sock.version())

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def play(port, dialogue, source=None):
    """Plays a dialogue; returns the replies (greeting first). source: the
    client's loopback address (default: the kernel's choice, 127.0.0.1)."""
    c = _Conn(port, source)
    try:
        c.expect(1)
        for kind, data, n in dialogue.steps:
            if c.closed:
                break
            if kind == "wait":
                c._read(time.monotonic() + n)
                c._take_replies()
                continue
            c.send(data)
            c.expect(n)
            if kind == "tls" and c.replies and c.replies[-1].startswith(
                    "220") and not c.closed:
                c.starttls()
        if not c.closed:
            c.send(b"QUIT\r\n")
        deadline = time.monotonic() + STEP_TIMEOUT
        while not c.closed and c._read(deadline):
            pass
        c._take_replies()
        if c.buf:
            c.replies.append("<partial> " + c.buf.decode("utf-8", "replace"))
        c.replies.append("<closed>" if c.closed else "<open>")
        return c.replies
    finally:
        c.close()
