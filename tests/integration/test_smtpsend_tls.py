"""smtpsend's STARTTLS checks: --tls-verify fails the session against
spamsink's self-signed certificate, a certificate trusted with --tls-ca
passes only under its own name, and the SNI smtpsend sends is the one a
real TLS server sees (Python's ssl module, OpenSSL underneath)."""
import json
import os
import socket
import ssl
import subprocess
import tempfile
import threading
import unittest

from harness import BUILD, Sink

SMTPSEND = os.path.join(BUILD, "smtpsend")
NAME = "mx.test.example"


def make_cert(directory):
    """A self-signed certificate for NAME (and its key), made by openssl."""
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                    "-subj", "/CN=" + NAME, "-addext",
                    "subjectAltName=DNS:" + NAME, "-keyout", key, "-out", cert],
                   check=True, capture_output=True, timeout=30)
    return cert, key


def smtpsend(port, *args):
    """One STARTTLS session sending one message; (exit code, report)."""
    out = subprocess.run([SMTPSEND, "-p", str(port), "-s", "1", "-n", "1",
                          "--starttls-share", "1", "--phase-timeout", "10",
                          "--json", "--no-progress", *args],
                         capture_output=True, text=True, timeout=60)
    return out.returncode, json.loads(out.stdout)


class StartTlsServer:
    """A minimal SMTP server on loopback for one session: offers STARTTLS,
    records the SNI of the handshake, then accepts one message."""

    def __init__(self, cert, key):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.names = []
        self.ctx.sni_callback = lambda obj, name, ctx: self.names.append(name)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(30)
        self.port = self.listener.getsockname()[1]
        self.error = None
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        try:
            conn, _ = self.listener.accept()
            conn.settimeout(10)
            self.session(conn)
        except Exception as e:  # reported by join()
            self.error = e
        finally:
            self.listener.close()

    def session(self, sock):
        buf = b""

        def line():
            nonlocal buf
            for _ in range(10000):  # bounded
                if b"\r\n" in buf:
                    out, buf = buf.split(b"\r\n", 1)
                    return out.decode()
                chunk = sock.recv(4096)
                if not chunk:
                    raise EOFError("client closed")
                buf += chunk
            raise RuntimeError("line too long")

        sock.sendall(b"220 " + NAME.encode() + b" ESMTP test\r\n")
        for _ in range(100):
            cmd = line().upper()
            if cmd.startswith("EHLO"):
                ext = b"250-" + NAME.encode() + b"\r\n"
                if not isinstance(sock, ssl.SSLSocket):
                    ext += b"250-STARTTLS\r\n"
                sock.sendall(ext + b"250 8BITMIME\r\n")
            elif cmd == "STARTTLS":
                sock.sendall(b"220 go ahead\r\n")
                sock = self.ctx.wrap_socket(sock, server_side=True)
                buf = b""
            elif cmd == "DATA":
                sock.sendall(b"354 go on\r\n")
                while line() != ".":
                    pass
                sock.sendall(b"250 queued\r\n")
            elif cmd == "QUIT":
                sock.sendall(b"221 bye\r\n")
                sock.close()
                return
            else:  # MAIL, RCPT, RSET, NOOP
                sock.sendall(b"250 ok\r\n")

    def join(self):
        self.thread.join(30)
        if self.error:
            raise self.error


class SmtpsendTls(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="smtpsend-tls-")
        cls.cert, cls.key = make_cert(cls.tmp.name)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def sink(self, *args):
        s = Sink(*args)
        self.addCleanup(s.close)
        return s

    def test_verify_fails_against_the_self_signed_certificate(self):
        sink = self.sink()  # no tls_cert: spamsink makes a self-signed one
        code, rep = smtpsend(sink.port, "--tls-verify", "--tls-name", NAME)
        self.assertEqual(rep["messages"]["accepted"], 0, rep)
        self.assertNotEqual(code, 0)
        # Without --tls-verify any certificate will do.
        code, rep = smtpsend(sink.port, "--tls-name", NAME)
        self.assertEqual(rep["messages"]["accepted"], 1, rep)
        self.assertEqual(rep["extras"]["starttls"], 1, rep)
        self.assertEqual(code, 0)

    def test_a_trusted_certificate_passes_under_its_name_only(self):
        sink = self.sink("--smtp-tls-cert", self.cert,
                         "--smtp-tls-key", self.key)
        code, rep = smtpsend(sink.port, "--tls-ca", self.cert,
                             "--tls-name", NAME)
        self.assertEqual(rep["messages"]["accepted"], 1, rep)
        self.assertEqual(code, 0)
        code, rep = smtpsend(sink.port, "--tls-ca", self.cert,
                             "--tls-name", "other.test.example")
        self.assertEqual(rep["messages"]["accepted"], 0, rep)
        self.assertNotEqual(code, 0)

    def test_sni_is_the_tls_name(self):
        server = StartTlsServer(self.cert, self.key)
        code, rep = smtpsend(server.port, "--tls-name", NAME)
        server.join()
        self.assertEqual(rep["messages"]["accepted"], 1, rep)
        self.assertEqual(server.names, [NAME])

    def test_no_sni_for_an_address(self):
        # The host is 127.0.0.1 and no --tls-name: SNI is for names only.
        server = StartTlsServer(self.cert, self.key)
        code, rep = smtpsend(server.port)
        server.join()
        self.assertEqual(rep["messages"]["accepted"], 1, rep)
        self.assertEqual(server.names, [None])


if __name__ == "__main__":
    unittest.main()
