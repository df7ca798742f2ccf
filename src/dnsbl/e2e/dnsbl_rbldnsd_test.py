"""Differential: spamsink's DNSBL against the real rbldnsd (Debian) serving
the sink's own export of the same ledger.

Senders reach the sink through PROXY headers (IPv4 and IPv6, some with bot
evidence, some connect-only); the sink is stopped (its ledger committed),
`spamsink export --format rbldnsd` writes the zone, rbldnsd serves it, and
the sink starts again on the same ledger (its DNSBL seeded from it). Then
about 2,000 queries (listed, unlisted, IPv6, test points, apex, other types,
malformed names, wrong zone, raw garbage packets) go to both with
dnspython; each answer is reduced to what a DNSBL client acts on (rcode,
flags, A addresses and TTL, record types per section). Every disagreement
must be one of KNOWN (the places where the issue asks for more than a
static zone has); any other fails the test. The table of differences is
printed (docs/DNSBL.md quotes it).

Loopback only; every wait is bounded; both servers are stopped by pid.
"""
import collections
import ipaddress
import os
import random
import socket
import struct
import subprocess
import tempfile
import unittest

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype

from dnsbl_peers import (SPAMSINK, ZONE, Rbldnsd, Sink, reverse_name,
                         smtp_session)

RNG = random.Random(16)
V4_LISTED = ["198.51.%d.%d" % (i // 200, 1 + i % 200) for i in range(240)]
V6_LISTED = ["2001:db8:%x::%x" % (i, i + 1) for i in range(60)]
BOTS = ["203.0.113.%d" % (i + 1) for i in range(20)]  # bare LF: 127.0.0.3
SCANNERS = ["192.0.2.%d" % (i + 1) for i in range(20)]  # connect-only
TP_V6 = "::ffff:127.0.0.2"


def v6_name(addr):
    return reverse_name(str(ipaddress.ip_address(addr)))


def summary(msg):
    """What a client acts on, comparable across servers."""
    if msg is None:
        return ("no answer",)
    a = sorted(r.to_text() for rr in msg.answer
               if rr.rdtype == dns.rdatatype.A for r in rr)
    ttl = sorted({rr.ttl for rr in msg.answer})
    return (dns.rcode.to_text(msg.rcode()),
            "aa" if msg.flags & dns.flags.AA else "-",
            "tc" if msg.flags & dns.flags.TC else "-", tuple(a), tuple(ttl),
            tuple(sorted(dns.rdatatype.to_text(rr.rdtype)
                         for rr in msg.answer)),
            tuple(sorted(dns.rdatatype.to_text(rr.rdtype)
                         for rr in msg.authority)),
            "edns%d" % msg.edns)


def ask(port, qname, qtype="A", edns=-1, rdclass="IN"):
    q = dns.message.make_query(qname, qtype, rdclass=rdclass, use_edns=edns)
    q.flags &= ~dns.flags.RD
    try:
        return dns.query.udp(q, "127.0.0.1", port=port, timeout=2)
    except dns.exception.Timeout:
        return None


def ask_raw(port, packet):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.3)
    s.sendto(packet, ("127.0.0.1", port))
    try:
        data = s.recv(4096)
    except socket.timeout:
        return ("no answer",)
    finally:
        s.close()
    if len(data) < 12:
        return ("short", len(data))
    flags = struct.unpack(">H", data[2:4])[0]
    return ("rcode", dns.rcode.to_text(flags & 0xF), "id", data[:2] ==
            packet[:2])


def name_wire(name):
    return b"".join(bytes([len(l)]) + l.encode()
                    for l in name.split(".") if l) + b"\x00"


def garbage_packets():
    hdr = lambda qd, flags=0: struct.pack(">HHHHHH", 0x1234, flags, qd, 0, 0,
                                          0)
    q = name_wire("2.0.0.127." + ZONE) + b"\x00\x01\x00\x01"
    loop = hdr(1) + b"\xc0\x0c" + b"\x00\x01\x00\x01"
    long_name = hdr(1) + b"".join(b"\x3f" + b"a" * 63 for _ in range(5)) + \
        name_wire(ZONE) + b"\x00\x01\x00\x01"
    return {
        "QDCOUNT 0": hdr(0),
        "QDCOUNT 2": hdr(2) + q + q,
        "truncated question": hdr(1) + q[:9],
        "compression loop": loop,
        "forward pointer": hdr(1) + b"\xc0\x20" + b"\x00\x01\x00\x01",
        "name over 255 octets": long_name,
        "a response (QR set)": hdr(1, 0x8000) + q,
        "opcode STATUS": hdr(1, 2 << 11) + q,
        "opcode NOTIFY": hdr(1, 4 << 11) + q,
        "extended label type": hdr(1) + b"\x41abc\x00\x00\x01\x00\x01",
        "header only, 11 octets": hdr(1)[:11],
        "random 40 octets": bytes(RNG.randrange(256) for _ in range(40)),
    }


# The differences allowed, each where the issue asks for more than a static
# zone has or where both behaviours are correct DNS: kind -> why.
KNOWN = {
    "bot evidence":
        "the sink adds A 127.0.0.3 (bot evidence) beside 127.0.0.2: the "
        "issue's reason codes; the export has one A value for every entry",
    "test point":
        "the sink always lists 127.0.0.2 and ::FFFF:7F00:2 (RFC 5782 "
        "section 5); rbldnsd lists only what its zone file holds",
    "authority NS":
        "rbldnsd adds the zone's NS to the authority section of positive "
        "answers; the sink sends minimal answers (the section is optional "
        "and DNSBL clients read only the answer)",
    "EDNS0":
        "to a query with EDNS0 the sink answers with an OPT record (payload "
        "1232), as the issue asks; rbldnsd does not implement EDNS0 and "
        "answers without one (RFC 6891 allows both)",
    "error rcode vs silence":
        "for a malformed packet (QDCOUNT not 1, a broken or looping name, "
        "an extended label type) the sink answers FORMERR (NOTIMP for an "
        "unknown opcode), as RFC 1035 says, the same size as the query and "
        "rate limited; rbldnsd drops it",
}


def classify(cat, ours, theirs):
    """The KNOWN kinds that explain ours != theirs, plus "unexplained" when
    they do not explain all of it."""
    kinds = []
    o, t = list(ours), list(theirs)
    if len(o) == 8 and len(t) == 8 and o[5] and t[5] and \
            o[6] == () and t[6] == ("NS",):
        kinds.append("authority NS")
        o[6] = t[6]
    if len(o) == 8 and len(t) == 8 and o[7] == "edns0" and t[7] == "edns-1":
        kinds.append("EDNS0")
        o[7] = t[7]
    if cat == "bot evidence" and o[3] == ("127.0.0.2", "127.0.0.3") and \
            t[3] == ("127.0.0.2",):
        kinds.append("bot evidence")
        o[3] = t[3]
    if cat == "test point" and o[0] == "NOERROR" and t[0] == "NXDOMAIN":
        kinds.append("test point")
        o = t
    if cat == "garbage packet" and o[0] == "rcode" and \
            o[1] in ("FORMERR", "NOTIMP") and t == ["no answer"]:
        kinds.append("error rcode vs silence")
        o = t
    if o != t:
        kinds.append("unexplained")
    return kinds


class DifferentialTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        tmp = cls.tmp.name
        db = os.path.join(tmp, "ledger.db")
        args = ["--server-proxy-trusted", "127.0.0.0/8", "--dnsbl-rate-limit", "0",
                "--dnsbl-ttl", "3600", "--dnsbl-negative-ttl", "3600"]
        first = Sink(tmp, db, args)
        try:
            for ip in V4_LISTED + V6_LISTED:
                smtp_session(first.smtp, ip)
            for ip in BOTS:
                smtp_session(first.smtp, ip, bare_lf=True)
            for ip in SCANNERS:
                smtp_session(first.smtp, ip, mail=False)
        finally:
            first.stop()
        zone_dir = os.path.join(tmp, "zone")
        os.mkdir(zone_dir)
        with open(os.path.join(zone_dir, "bl.zone"), "w") as out:
            subprocess.run([
                SPAMSINK, "export", "--db", db, "--format", "rbldnsd",
                "--ttl", "3600", "--ns", "ns.%s." % ZONE, "--hostmaster",
                "hostmaster.%s." % ZONE
            ], stdout=out, check=True, timeout=60)
        cls.rbl = Rbldnsd(zone_dir, "bl.zone")
        cls.sink = Sink(tmp, db, args)

    @classmethod
    def tearDownClass(cls):
        cls.sink.stop()
        cls.rbl.stop()
        cls.tmp.cleanup()

    def queries(self):
        """(category, qname, qtype, edns, class): about 2,000."""
        out = []
        edns = lambda i: 0 if i % 3 == 0 else -1
        for i, ip in enumerate(V4_LISTED):
            out.append(("listed IPv4", reverse_name(ip), "A", edns(i), "IN"))
            out.append(("listed IPv4 TXT", reverse_name(ip), "TXT", -1, "IN"))
            out.append(("listed, other type", reverse_name(ip),
                        ["AAAA", "MX", "NS"][i % 3], -1, "IN"))
        for i, ip in enumerate(V6_LISTED):
            out.append(("listed IPv6", v6_name(ip), "A", edns(i), "IN"))
            out.append(("listed IPv6 TXT", v6_name(ip), "TXT", -1, "IN"))
        for ip in BOTS:
            out.append(("bot evidence", reverse_name(ip), "A", -1, "IN"))
        for ip in SCANNERS:
            out.append(("connect-only", reverse_name(ip), "A", -1, "IN"))
        for i in range(700):
            ip = "%d.%d.%d.%d" % (RNG.randrange(1, 224), RNG.randrange(256),
                                  RNG.randrange(256), RNG.randrange(256))
            if ip in V4_LISTED or ip.startswith("127."):
                continue
            out.append(("unlisted IPv4", reverse_name(ip),
                        "A" if i % 4 else "TXT", edns(i), "IN"))
        for i in range(250):
            ip = str(ipaddress.IPv6Address(
                (0x2a00 << 112) | RNG.getrandbits(112)))
            out.append(("unlisted IPv6", v6_name(ip), "A", edns(i), "IN"))
        for qt in ["A", "TXT"]:
            out.append(("test point", reverse_name("127.0.0.2"), qt, -1, "IN"))
            out.append(("test point", v6_name(TP_V6), qt, -1, "IN"))
            out.append(("test point not listed", reverse_name("127.0.0.1"),
                        qt, -1, "IN"))
            out.append(("test point not listed", v6_name("::ffff:127.0.0.1"),
                        qt, -1, "IN"))
        for qt in ["SOA", "NS", "A", "TXT", "AAAA", "MX"]:
            out.append(("apex", ZONE, qt, 0, "IN"))
        bad = ["foo." + ZONE, "1.2.3." + ZONE, "256.1.1.1." + ZONE,
               "5.4.3.2.1." + ZONE, "a.b.c.d." + ZONE, "-1.0.0.10." + ZONE,
               "0" + "." * 0 + ".0" * 30 + "." + ZONE,
               ".".join("0" * 33) + "." + ZONE, "g." * 32 + ZONE,
               "x.2.0.0.127." + ZONE, "www.1.2.3.4." + ZONE]
        for i in range(200):
            out.append(("malformed name", bad[i % len(bad)] if i < 44 else
                        "%s.%s" % ("".join(RNG.choice("abcxyz019-")
                                           for _ in range(RNG.randrange(1, 12))),
                                   ZONE), "A", -1, "IN"))
        for i in range(120):
            ip = V4_LISTED[i % len(V4_LISTED)]
            zone = ["other.test", "test", "example.org", "xbl.test"][i % 4]
            out.append(("wrong zone", reverse_name(ip)[:-len(ZONE)] + zone,
                        "A", -1, "IN"))
        out.append(("wrong zone", ".", "SOA", -1, "IN"))
        return out

    def test_answers_agree_except_known(self):
        counts = collections.Counter()
        kinds = collections.Counter()
        examples = {}
        unexplained = []

        listed = collections.Counter()

        def compare(cat, qname, qtype, ours, theirs):
            counts[cat] += 1
            if cat.startswith("listed IPv"):
                listed[(ours[0], theirs[0])] += 1
            if ours == theirs:
                return
            for kind in classify(cat, ours, theirs):
                kinds[kind] += 1
                examples.setdefault(kind, (qname, qtype, ours, theirs))
                if kind == "unexplained":
                    unexplained.append((cat, qname, qtype, ours, theirs))

        for cat, qname, qtype, edns, rdclass in self.queries():
            compare(cat, qname, qtype,
                    summary(ask(self.sink.dns, qname, qtype, edns, rdclass)),
                    summary(ask(self.rbl.port, qname, qtype, edns, rdclass)))
        for label, packet in garbage_packets().items():
            compare("garbage packet", label, "", ask_raw(self.sink.dns, packet),
                    ask_raw(self.rbl.port, packet))
        total = sum(counts.values())
        print("\n%d queries by category: %s" % (total, ", ".join(
            "%s %d" % kv for kv in sorted(counts.items()))))
        print("differences by kind (a query may show more than one):")
        for kind, n in sorted(kinds.items()):
            qname, qtype, ours, theirs = examples[kind]
            print("  %-24s %4d  e.g. %s %s\n%30s spamsink: %s\n%30s rbldnsd:  "
                  "%s" % (kind, n, qname, qtype, "", ours, "", theirs))
        for u in unexplained[:10]:
            print("UNEXPLAINED %s %s %s\n  spamsink: %s\n  rbldnsd:  %s" % u)
        self.assertGreaterEqual(total, 1900)
        self.assertEqual(unexplained, [])
        self.assertEqual(kinds["bot evidence"], len(BOTS))
        self.assertEqual(kinds["test point"], 4)
        # Every sender is listed by both (A and TXT): the sink, seeded from
        # the ledger, agrees with the export of it, and the agreement above
        # is not two empty answers.
        self.assertEqual(dict(listed), {
            ("NOERROR", "NOERROR"): 2 * (len(V4_LISTED) + len(V6_LISTED))})


if __name__ == "__main__":
    unittest.main()
