"""The differential corpus: the systematic part, generated from a table of
states x commands, and the hand-written dialogues in corpus/*.txt.

Each generated dialogue brings the session into a state, sends one command
and then a probe (MAIL FROM), whose reply shows the state the command left
behind (need HELO, nested MAIL, or accepted).
"""
import glob
import os

from dialogue import Dialogue, expand, parse

HERE = os.path.dirname(os.path.abspath(__file__))


def _body(d):
    d.cmd("DATA")
    for line in ("Subject: differential", "", "body"):
        d.send(line.encode() + b"\r\n", 0)
    d.cmd(".")


# State name -> steps that bring a fresh session there.
STATES = {
    "fresh": lambda d: d,
    "helo": lambda d: d.cmd("HELO client.example.org"),
    "ehlo": lambda d: d.cmd("EHLO client.example.org"),
    "mail": lambda d: d.cmd("EHLO client.example.org").cmd(
        "MAIL FROM:<sender@example.org>"),
    "rcpt": lambda d: d.cmd("EHLO client.example.org").cmd(
        "MAIL FROM:<sender@example.org>").cmd("RCPT TO:<rcpt@example.net>"),
    "heloRcpt": lambda d: d.cmd("HELO client.example.org").cmd(
        "MAIL FROM:<sender@example.org>").cmd("RCPT TO:<rcpt@example.net>"),
    "afterData": lambda d: _body(
        d.cmd("EHLO client.example.org").cmd(
            "MAIL FROM:<sender@example.org>").cmd(
                "RCPT TO:<rcpt@example.net>")),
}

LONG = "x" * 300
LONG_LOCAL = "a" * 300

# (label, command line or raw bytes with {N*c} and escapes, replies).
COMMANDS = [
    ("ehlo-none", "EHLO", 1),
    ("ehlo-name", "EHLO other.example.org", 1),
    ("ehlo-literal", "EHLO [127.0.0.1]", 1),
    ("ehlo-words", "EHLO a b c", 1),
    ("ehlo-long", "EHLO " + LONG, 1),
    ("helo-none", "HELO", 1),
    ("helo-name", "HELO other.example.org", 1),
    ("helo-bang", "HELO bad!host", 1),
    ("mail-none", "MAIL", 1),
    ("mail-from-empty", "MAIL FROM:", 1),
    ("mail-null", "MAIL FROM:<>", 1),
    ("mail-ok", "MAIL FROM:<a@example.org>", 1),
    ("mail-nobrackets", "MAIL FROM:a@example.org", 1),
    ("mail-bogus", "MAIL FROM:bogus", 1),
    ("mail-space", "MAIL FROM: <a@example.org>", 1),
    ("mail-unclosed", "MAIL FROM:<a@example.org", 1),
    ("mail-badaddr", "MAIL FROM:<bad address@example.org>", 1),
    ("mail-route", "MAIL FROM:<@relay.example:a@example.org>", 1),
    ("mail-longlocal", "MAIL FROM:<" + LONG_LOCAL + "@example.org>", 1),
    ("mail-size", "MAIL FROM:<a@example.org> SIZE=1000", 1),
    ("mail-size-big", "MAIL FROM:<a@example.org> SIZE=99999999999", 1),
    ("mail-size-bad", "MAIL FROM:<a@example.org> SIZE=abc", 1),
    ("mail-body8", "MAIL FROM:<a@example.org> BODY=8BITMIME", 1),
    ("mail-bodybin", "MAIL FROM:<a@example.org> BODY=BINARYMIME", 1),
    ("mail-bodybad", "MAIL FROM:<a@example.org> BODY=FOO", 1),
    ("mail-utf8", "MAIL FROM:<a@example.org> SMTPUTF8", 1),
    ("mail-dsn", "MAIL FROM:<a@example.org> RET=HDRS ENVID=abc123", 1),
    ("mail-retbad", "MAIL FROM:<a@example.org> RET=FOO", 1),
    ("mail-xfoo", "MAIL FROM:<a@example.org> XFOO=1", 1),
    ("mail-auth", "MAIL FROM:<a@example.org> AUTH=<>", 1),
    ("mail-to", "MAIL TO:<a@example.org>", 1),
    ("rcpt-none", "RCPT", 1),
    ("rcpt-to-empty", "RCPT TO:", 1),
    ("rcpt-null", "RCPT TO:<>", 1),
    ("rcpt-ok", "RCPT TO:<r@example.net>", 1),
    ("rcpt-nobrackets", "RCPT TO:r@example.net", 1),
    ("rcpt-postmaster", "RCPT TO:<postmaster>", 1),
    ("rcpt-local", "RCPT TO:<r>", 1),
    ("rcpt-literal", "RCPT TO:<r@[127.0.0.1]>", 1),
    ("rcpt-dsn", "RCPT TO:<r@example.net> NOTIFY=SUCCESS,FAILURE "
     "ORCPT=rfc822;r@example.net", 1),
    ("rcpt-never", "RCPT TO:<r@example.net> NOTIFY=NEVER", 1),
    ("rcpt-notifybad", "RCPT TO:<r@example.net> NOTIFY=BOGUS", 1),
    ("rcpt-xfoo", "RCPT TO:<r@example.net> XFOO=1", 1),
    ("rcpt-from", "RCPT FROM:<r@example.net>", 1),
    ("data-arg", "DATA x", 1),
    ("bdat-none", "BDAT", 1),
    ("bdat-bad", "BDAT x", 1),
    ("bdat-last", "R1:BDAT 5 LAST\\r\\nhello", None),
    ("bdat-chunk", "R1:BDAT 5\\r\\nhello", None),
    ("rset", "RSET", 1),
    ("rset-arg", "RSET x", 1),
    ("noop", "NOOP", 1),
    ("noop-arg", "NOOP x", 1),
    ("vrfy-none", "VRFY", 1),
    ("vrfy-user", "VRFY user", 1),
    ("vrfy-addr", "VRFY <u@example.org>", 1),
    ("expn-none", "EXPN", 1),
    ("expn-list", "EXPN list", 1),
    ("help", "HELP", 1),
    ("help-arg", "HELP MAIL", 1),
    ("etrn-none", "ETRN", 1),
    ("etrn-domain", "ETRN example.org", 1),
    ("etrn-at", "ETRN @example.org", 1),
    ("auth-plain", "AUTH PLAIN", 1),
    ("auth-none", "AUTH", 1),
    ("starttls-arg", "STARTTLS x", 1),
    ("unknown", "XYZZY", 1),
    ("unknown-arg", "XYZZY foo bar", 1),
    ("empty", "", 1),
    ("spaces", "   ", 1),
    ("turn", "TURN", 1),
    ("verb", "VERB", 1),
    ("lower", "noop", 1),
    ("long-line", "NOOP " + "y" * 600, 1),
    ("quit-arg", "QUIT now", 1),
]


def generated():
    out = []
    for state, prefix in STATES.items():
        for label, line, n in COMMANDS:
            d = Dialogue(f"{state}/{label}")
            prefix(d)
            if line.startswith("R1:"):
                d.send(expand(line[3:]), 1)
            else:
                d.send(line.encode() + b"\r\n", n)
            d.cmd("MAIL FROM:<probe@example.org>")
            out.append(d)
    return out


def limits():
    """Dialogues too long to write by hand: the recipient limit."""
    d = Dialogue("rcpt-limit-1001")
    d.cmd("EHLO client.example.org").cmd("MAIL FROM:<a@example.org>")
    batch = b"".join(b"RCPT TO:<r%d@example.net>\r\n" % i
                     for i in range(1002))
    d.send(batch, 1002)
    d.cmd("DATA").cmd(".")
    return [d]


def hand_written():
    out = []
    for path in sorted(glob.glob(os.path.join(HERE, "corpus", "*.txt"))):
        with open(path) as f:
            out += parse(f.read(), path)
    return out


def all_dialogues():
    return generated() + limits() + hand_written()
