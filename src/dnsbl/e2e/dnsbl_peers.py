"""The programs the DNSBL tests and benchmark run: the spamsink binary with
its DNSBL on, the real rbldnsd (Debian) serving the sink's own export, and
SMTP sessions that reach the sink through a PROXY header (so one loopback
client stands for any IPv4 or IPv6 sender).

Loopback only; every wait is bounded; every process started here is stopped
by its pid.
"""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "..", "tests", "lib"))
from spamsink_proc import SPAMSINK, Proc, Spamsink  # noqa: E402,F401

ZONE = "bl.test"


def free_port(kind=socket.SOCK_DGRAM):
    """A port free for UDP and TCP on 127.0.0.1 at the time of the call."""
    for _ in range(50):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("127.0.0.1", 0))
        port = u.getsockname()[1]
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            t.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            t.close()
            u.close()
    raise RuntimeError("no free port")


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Sink(Spamsink):
    """spamsink with SMTP, API and DNSBL on ephemeral loopback ports.
    `dns` may name the DNSBL address ("127.0.0.1:53" in a namespace);
    dnsbl=False: the DNSBL off (for memory comparisons)."""

    def __init__(self, tmp, db, extra=(), dns="127.0.0.1:0", smtp="127.0.0.1:0",
                 dnsbl=True):
        args = [
            "--listen", smtp, "--api-listen", "127.0.0.1:0",
            "--db", db, "--tarpit-enabled", "false"
        ] + (["--dnsbl-enabled", "true", "--dnsbl-zone", ZONE,
              "--dnsbl-listen", dns] if dnsbl else []) + list(extra)
        super().__init__(args, os.path.join(
            tmp, "spamsink.%d.log" % time.time_ns()),
            want=("smtp", "api", "dns") if dnsbl else ("smtp", "api"))
        self.smtp, self.api = self.ports["smtp"], self.ports["api"]
        self.dns = self.ports.get("dns")


class Rbldnsd(Proc):
    """The real rbldnsd serving `zone_file` (in `dir`) as ZONE, combined."""

    def __init__(self, dir, zone_file, port=None):
        self.port = port or free_port()
        # rbldnsd refuses to run as root and drops to the rbldns user, which
        # must be able to read the directory and the file.
        os.chmod(dir, 0o755)
        os.chmod(os.path.join(dir, zone_file), 0o644)
        super().__init__([
            "rbldnsd", "-n", "-f", "-b", "127.0.0.1/%d" % self.port, "-w", dir,
            "%s:combined:%s" % (ZONE, zone_file)
        ], os.path.join(dir, "rbldnsd.log"))
        import dns.message
        import dns.query
        q = dns.message.make_query(ZONE, "SOA")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # loading a large zone takes time
            if self.proc.poll() is not None:
                raise RuntimeError("rbldnsd exited: " + self.output())
            try:
                r = dns.query.udp(q, "127.0.0.1", port=self.port, timeout=0.2)
                if r.answer:
                    return
            except Exception:  # dns.exception.Timeout until it listens
                pass
        self.stop()
        raise RuntimeError("rbldnsd did not answer: " + self.output())


def proxy_header(src):
    if ":" in src:
        return ("PROXY TCP6 %s ::1 40000 25\r\n" % src).encode()
    return ("PROXY TCP4 %s 127.0.0.1 40000 25\r\n" % src).encode()


def smtp_session(port, src, mail=True, bare_lf=False, proxy=True):
    """One SMTP session that the sink sees as coming from `src`: through a
    PROXY v1 header, or with proxy=False from the loopback address `src`
    itself. mail=False: connect and QUIT only; bare_lf: the body has a bare
    LF (bot evidence). Returns the last reply."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10,
                                 source_address=None if proxy else (src, 0))
    f = s.makefile("rwb")

    def reply():
        line = b""
        for _ in range(50):
            line = f.readline()
            if not line or line[3:4] != b"-":
                return line
        return line

    if proxy:
        f.write(proxy_header(src))
        f.flush()
    reply()
    cmds = [b"EHLO client.test"]
    if mail:
        cmds += [b"MAIL FROM:<a@client.test>", b"RCPT TO:<b@sink.test>",
                 b"DATA"]
    for cmd in cmds:
        f.write(cmd + b"\r\n")
        f.flush()
        reply()
    if mail:
        body = b"Subject: hi\r\n\r\nbuy\nnow\r\n" if bare_lf else \
            b"Subject: hi\r\n\r\nbuy now\r\n"
        f.write(body + b".\r\n")
        f.flush()
        reply()
    f.write(b"QUIT\r\n")
    f.flush()
    last = reply()
    s.close()
    return last


def reverse_name(ip):
    """The DNSBL query name of an address (reversed octets or nibbles)."""
    import ipaddress
    a = ipaddress.ip_address(ip)
    if a.version == 4:
        return ".".join(reversed(ip.split("."))) + "." + ZONE
    return ".".join(reversed(a.exploded.replace(":", ""))) + "." + ZONE
