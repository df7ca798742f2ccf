#!/usr/bin/python3
"""The TLS probe table: a fixed set of ClientHellos (versions, cipher
lists, curves; openssl s_client after STARTTLS) sent to a private stock
Debian Postfix and to spamsink's postfix persona. Each must give the same
negotiated version, cipher and certificate key type.

  tls_probe.py [postfix|exim]   prints the table side by side (default
                                postfix); exit 1 on a difference

Debian's Exim is built with GnuTLS: the exim persona's OpenSSL context
plays GnuTLS's NORMAL priorities (net::TlsStack::kGnuTls); both tables are
required equal (test_tls.py). The fourth column says whether the server
issued a session ticket.
"""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "integration"))

import realmta  # noqa: E402

L0 = "@SECLEVEL=0"  # the client must allow what old stacks offer
PROBES = [
    ("default", []),
    ("tls1.3", ["-tls1_3"]),
    ("tls1.2", ["-tls1_2"]),
    ("tls1.1", ["-tls1_1", "-cipher", "DEFAULT" + L0]),
    ("tls1.0", ["-tls1", "-cipher", "DEFAULT" + L0]),
    ("java7-like", ["-tls1", "-cipher",
                    "ECDHE-RSA-AES128-SHA:AES128-SHA:DHE-RSA-AES128-SHA:"
                    "EDH-RSA-DES-CBC3-SHA" + L0]),
    ("ecdhe-aes128-gcm", ["-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"]),
    ("dhe-aes256-gcm", ["-tls1_2", "-cipher", "DHE-RSA-AES256-GCM-SHA384"]),
    ("plain-rsa", ["-tls1_2", "-cipher", "AES128-SHA" + L0]),
    ("aria", ["-tls1_2", "-cipher", "ECDHE-ARIA256-GCM-SHA384" + L0]),
    ("camellia", ["-tls1_2", "-cipher", "CAMELLIA256-SHA" + L0]),
    ("ccm", ["-tls1_2", "-cipher", "DHE-RSA-AES128-CCM" + L0]),
    ("anon-dh", ["-tls1_2", "-cipher", "ADH-AES256-GCM-SHA384" + L0]),
    ("anon-ecdh", ["-tls1_2", "-cipher", "AECDH-AES128-SHA" + L0]),
    ("ecdsa-only", ["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"]),
    ("client-order", ["-tls1_2", "-cipher",
                      "AES128-SHA:ECDHE-RSA-AES256-GCM-SHA384" + L0]),
    ("curve-p384", ["-tls1_2", "-curves", "P-384"]),
    ("curve-x448", ["-tls1_2", "-curves", "X448"]),
    ("curve-p521-tls13", ["-tls1_3", "-groups", "P-521"]),
    ("tls13-chacha", ["-tls1_3", "-ciphersuites",
                      "TLS_CHACHA20_POLY1305_SHA256"]),
    ("tls13-aes128", ["-tls1_3", "-ciphersuites", "TLS_AES_128_GCM_SHA256"]),
    ("tls13-ccm", ["-tls1_3", "-ciphersuites", "TLS_AES_128_CCM_SHA256"]),
    ("3des", ["-tls1", "-cipher", "DES-CBC3-SHA" + L0]),
    ("rc4", ["-tls1_2", "-cipher", "RC4-SHA" + L0]),
    ("cbc-sha384", ["-tls1_2", "-cipher", "ECDHE-RSA-AES256-SHA384"]),
    ("chacha-tls12", ["-tls1_2", "-cipher", "ECDHE-RSA-CHACHA20-POLY1305"]),
]


def probe(port, args):
    """Returns (version, cipher, key) or the failure."""
    try:
        out = subprocess.run(
            ["openssl", "s_client", "-starttls", "smtp", "-connect",
             f"127.0.0.1:{port}", "-servername", realmta.HOSTNAME,
             "-ign_eof", "-crlf"] + args,
            input=b"QUIT\n", capture_output=True, timeout=20).stdout.decode(
                "utf-8", "replace")
    except subprocess.TimeoutExpired:
        return ("timeout", "-", "-", "-")
    # The SSL-Session block ("Protocol :") names the version; with TLS 1.3
    # it is printed only when the server sent a session ticket (GnuTLS's
    # Exim sends none), so "New, TLSv1.3, Cipher is X" stands in (for
    # older versions that line names the cipher's version, not the one
    # negotiated).
    proto = re.search(r"^\s+Protocol\s*: (\S+)", out, re.M)
    cipher = re.search(r"^\s+Cipher\s*: (\S+)", out, re.M)
    new = re.search(r"^New, (TLSv1\.3), Cipher is (\S+)", out, re.M)
    if proto and cipher and cipher.group(1) != "0000":
        proto, cipher = proto.group(1), cipher.group(1)
    elif new:
        proto, cipher = new.group(1), new.group(2)
    else:
        return ("failed", "-", "-", "-")
    # Whether the server issued a session ticket (stock Postfix does,
    # GnuTLS's Exim does not).
    ticket = "ticket" if "Session-Ticket" in out or re.search(
        r"TLS session ticket lifetime hint", out) else "no-ticket"
    key = "none"
    pem = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----",
                    out, re.S)
    if pem:
        text = subprocess.run(["openssl", "x509", "-noout", "-text"],
                              input=pem.group(0).encode(),
                              capture_output=True, timeout=20).stdout.decode()
        alg = re.search(r"Public Key Algorithm: (\S+)", text)
        bits = re.search(r"Public-Key: \((\d+) bit\)", text)
        key = f"{alg.group(1) if alg else '?'}/{bits.group(1) if bits else '?'}"
    return (proto, cipher, key, ticket)


def table(persona="postfix"):
    import harness
    real = realmta.Exim() if persona == "exim" else realmta.Postfix()
    sink = harness.Sink("--persona", persona, "--tarpit-enabled", "false",
                        "--hostname", realmta.HOSTNAME)
    rows = []
    try:
        # Four probes at a time (each is two openssl processes).
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(4) as pool:
            rows = list(pool.map(lambda p: (p[0], probe(real.port, p[1]),
                                            probe(sink.port, p[1])), PROBES))
    finally:
        real.close()
        sink.close()
    return rows


def render(rows, persona="postfix"):
    real = "real Exim 4.96" if persona == "exim" else "stock Postfix"
    lines = [f"| probe | {real} | spamsink ({persona}) | same |",
             "|---|---|---|---|"]
    for name, a, b in rows:
        lines.append(f"| {name} | {' '.join(a)} | {' '.join(b)} | "
                     f"{'yes' if a == b else '**NO**'} |")
    return "\n".join(lines)


if __name__ == "__main__":
    persona = sys.argv[1] if len(sys.argv) > 1 else "postfix"
    rows = table(persona)
    print(render(rows, persona))
    sys.exit(0 if all(a == b for _, a, b in rows) else 1)
