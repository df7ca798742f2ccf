"""Differences between a real daemon and its persona that are accepted,
each with its reason. An entry matches a reply pair when its three regular
expressions match the dialogue name, the real reply and spamsink's reply.
Keep this list short: every entry is a way to tell spamsink apart.
"""

ALLOWLIST = {
    "postfix": [
        {
            "dialogue": r"rcpt-literal$",
            "real": r"^550 5\.1\.1 <r@\[127\.0\.0\.1\]>: Recipient address "
                    r"rejected: User unknown in local recipient table$",
            "sink": r"^250 2\.1\.5 Ok$",
            "reason": "Postfix treats a literal of its own address as a "
                      "local destination and looks the user up in its local "
                      "recipient table; spamsink has no local users and "
                      "accepts every recipient. A client must know the "
                      "server's own address to ask.",
        },
        {
            "dialogue": r"^message-bare-lf$",
            "real": r".",
            "sink": r".",
            "reason": "Postfix 3.7 (smtpd_forbid_bare_newline = no) ends a "
                      "message at LF . LF; spamsink deliberately ends it "
                      "only at CR LF . CR LF and records bare LF as SMTP "
                      "smuggling evidence (docs/DESIGN: smuggling), so the "
                      "replies after such a message differ.",
        },
    ],
    "exim": [
        {
            "dialogue": r"^message-bare-lf$",
            "real": r".",
            "sink": r".",
            "reason": "Exim 4.96 ends a message at LF . LF (then finds the "
                      "client's CR LF . CR LF pipelined early: 554 SMTP "
                      "synchronization error); spamsink deliberately ends it "
                      "only at CR LF . CR LF and records bare LF as SMTP "
                      "smuggling evidence (docs/DESIGN: smuggling).",
        },
        {
            "dialogue": r"^bdat-then-data$",
            "real": r"^(<open>|<missing>)$",
            "sink": r"^(421 Lost incoming connection|<closed>)$",
            "reason": "QUIT inside a BDAT sequence when the chunks so far "
                      "end a header line with LF: Exim 4.96's header loop "
                      "takes the end of input after its 221 for the "
                      "message's end (receive.c: nextch == EOF -> END_DOT) "
                      "and goes back to reading commands on a connection it "
                      "said it was closing, until its idle timeout (a "
                      "defect). spamsink says 421 as Exim does for any other "
                      "chunk end and closes: a connection held after 221 "
                      "would hold a slot for the idle timeout.",
        },
        {
            "dialogue": r"^starttls-in-transaction$",
            "real": r"^(<partial> \x15\x03\x03\x00\x02\x02\n|<closed>)$",
            "sink": r"^(<closed>|<missing>)$",
            "reason": "After 220 TLS go ahead the client sends plain text "
                      "(QUIT) instead of a ClientHello: GnuTLS (Debian's "
                      "Exim) answers with a fatal unexpected_message alert, "
                      "OpenSSL (spamsink) closes without one for a first "
                      "record that does not look like TLS (ssl3_get_record: "
                      "SSL_AD_NO_ALERT). GnuTLS-only behaviour; writing the "
                      "alert by hand past OpenSSL in both I/O back ends was "
                      "not judged worth one reply to non-TLS clients.",
        },
        {
            "dialogue": r"^rcpt-limit-1001$",
            "real": r"^250 Accepted$",
            "sink": r"^452 too many recipients$",
            "reason": "Exim 4.96 has no recipient limit by default; "
                      "spamsink keeps smtp.max_recipients (1000, stock "
                      "Postfix's) whatever the persona, to bound a "
                      "session's memory and work.",
        },
    ],
    "sendmail": [
        {
            "dialogue": r".",
            "real": r"^220 .* logging access from: \[127\.0\.0\.2\]\(TEMP\)"
                    r"-\[127\.0\.0\.2\]$",
            "sink": r"^220 .* logging access from: \[127\.0\.0\.2\]\(FAIL\)"
                    r"-\[127\.0\.0\.2\]$",
            "reason": "Needs real DNS. The test's network namespace has no "
                      "resolver, so the real Sendmail's reverse lookup of "
                      "its client fails temporarily (TEMP); on the internet "
                      "a client without a PTR record gets (FAIL), which is "
                      "what spamsink says to every client (it does no "
                      "reverse lookup: docs/PERSONAS.md, Sendmail).",
        },
        {
            "dialogue": r"rcpt-literal$",
            "real": r"^550 5\.1\.1 <r@\[127\.0\.0\.1\]>\.\.\. User unknown$",
            "sink": r"^250 2\.1\.5 <r@\[127\.0\.0\.1\]>\.\.\. Recipient ok$",
            "reason": "Sendmail treats a literal of its own address as a "
                      "local destination and looks the user up; spamsink "
                      "does not know which addresses it is reached on and "
                      "accepts (as for Postfix). A client must know the "
                      "server's own address to ask.",
        },
        {
            "dialogue": r"^rcpt-limit-1001$",
            "real": r"^250 2\.1\.5 <r100[01]@example\.net>\.\.\. "
                    r"Recipient ok$",
            "sink": r"^452 4\.5\.3 Too many recipients$",
            "reason": "Debian's Sendmail has no recipient limit "
                      "(confMAX_RCPTS_PER_MESSAGE unset); spamsink keeps "
                      "smtp.max_recipients (1000) whatever the persona, to "
                      "bound a session's memory and work.",
        },
        {
            "dialogue": r"^mail-size-exact-limit$",
            "real": r"^250 2\.1\.0 <a@example\.org>\.\.\. Sender ok$",
            "sink": r"^452 4\.4\.5 Insufficient disk space; try again "
                    r"later$",
            "reason": "Debian's Sendmail has no MaxMessageSize and refuses "
                      "a SIZE= only over its free disk space; spamsink "
                      "keeps smtp.max_message_size whatever the persona and "
                      "answers a SIZE= over it with Sendmail's disk-space "
                      "text.",
        },
        {
            "dialogue": r"^message-bare-lf$",
            "real": r".",
            "sink": r".",
            "reason": "Debian's Sendmail 8.17.1.9 (smuggling fix) answers a "
                      "bare LF in message text with 421 4.5.0 Bare linefeed "
                      "(LF) not allowed and hangs up; spamsink deliberately "
                      "ends a message only at CR LF . CR LF, takes it, and "
                      "records bare LF as SMTP smuggling evidence "
                      "(docs/DESIGN: smuggling).",
        },
        {
            "dialogue": r"^error-limit$",
            "real": r"^(500 5\.5\.1 Command unrecognized: \"XYZZY21\"|"
                    r"250 2\.0\.0 OK|221 2\.0\.0 .* closing connection|"
                    r"<closed>)$",
            "sink": r"^(421 4\.7\.0 .* Too many errors|<closed>|<missing>)$",
            "reason": "Sendmail counts only unknown commands, up to 25 "
                      "(MAXBADCOMMANDS); spamsink keeps smtp.max_errors (20 "
                      "errors of any kind) whatever the persona, to bound "
                      "what a session costs.",
        },
    ],
}
