"""Hostile input. Each case is followed by a normal transaction that must
still succeed, and the server must still be running at the end."""
import json
import os
import signal
import socket
import struct
import time
import unittest

from harness import (Conn, Sink, SPAMSINK, deny_io_uring, executor_args,
                     transaction)
import platform
import subprocess


class Hostile(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sink = Sink("--server-max-connections-per-ip", "5000",
                        "--smtp-idle-timeout", "30")

    @classmethod
    def tearDownClass(cls):
        code = cls.sink.stop()
        log = cls.sink.stderr()
        cls.sink.close()
        assert code == 0, log

    def tearDown(self):
        self.assertIsNone(self.sink.proc.poll(), "server died")
        self.assertTrue(transaction(self.sink.port).startswith("250 2.0.0"))

    def greet(self, c):
        self.assertTrue(c.reply().startswith("220 "))

    def test_megabyte_line_without_crlf(self):
        c = Conn(self.sink.port)
        self.greet(c)
        c.send(b"A" * (1 << 20))
        # As Postfix: the line is cut at 2048 octets and answered at its end.
        c.send(b"\r\nNOOP\r\n")
        self.assertEqual(c.reply(), "500 5.5.2 Error: command not recognized")
        self.assertEqual(c.reply(), "250 2.0.0 Ok")
        c.close()

    def test_nul_and_binary_bytes(self):
        c = Conn(self.sink.port)
        self.greet(c)
        c.send(b"EHLO \x00\xff\r\n")
        self.assertTrue(c.reply().startswith("250"))
        # Binary junk ends the session, as Postfix's forbidden commands do
        # (its first line does not start with a letter).
        blob = bytes(range(256)) * 64 + b"\x00\x00\r\n"
        c.send(blob)
        self.assertEqual(c.reply(),
                         "221 2.7.0 Error: I can break rules, too. Goodbye.")
        c.close()

    def test_ten_thousand_recipients(self):
        c = Conn(self.sink.port)
        self.greet(c)
        c.send("EHLO x\r\nMAIL FROM:<a@test.example>\r\n")
        c.reply()
        c.reply()
        c.send("".join("RCPT TO:<r%d@test.example>\r\n" % i
                       for i in range(10000)))
        codes = []
        try:
            while len(codes) < 10000:
                codes.append(c.reply()[:3])
        except EOFError:
            pass
        # 1000 accepted (Postfix's smtpd_recipient_limit), the rest 452
        # (RFC 5321 4.5.3.1.10), until the command limit (10,000 per
        # session) answers 421 and closes.
        self.assertEqual(codes.count("250"), 1000)
        self.assertEqual(codes.count("452"), len(codes) - 1001)
        self.assertEqual(codes[-1], "421")
        c.close()

    def test_fifty_megabyte_body(self):
        c = Conn(self.sink.port, timeout=60)
        self.greet(c)
        c.send("EHLO x\r\nMAIL FROM:<a@test.example>\r\nRCPT TO:<b@test.example>\r\nDATA\r\n")
        for _ in range(3):
            c.reply()
        self.assertTrue(c.reply().startswith("354"))
        line = b"X" * 998 + b"\r\n"
        chunk = line * 1024
        for _ in range(50):
            c.send(chunk)
        c.send(b".\r\n")
        self.assertTrue(c.reply().startswith("552 5.3.4"))
        c.close()

    def test_reset_in_the_middle_of_data(self):
        c = Conn(self.sink.port)
        self.greet(c)
        c.send("EHLO x\r\nMAIL FROM:<a@test.example>\r\nRCPT TO:<b@test.example>\r\nDATA\r\n")
        for _ in range(4):
            c.reply()
        c.send(b"half a message\r\n" * 100)
        c.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                       struct.pack("ii", 1, 0))
        c.close()  # RST

    def test_two_thousand_idle_connections(self):
        conns = []
        try:
            for i in range(2000):
                # Spread over source addresses, as many clients would be.
                conns.append(Conn(self.sink.port,
                                  source="127.0.%d.%d" % (1 + i // 250,
                                                          1 + i % 250)))
            for c in conns[::97]:
                self.greet(c)
        finally:
            for c in conns:
                c.close()

    def test_twenty_thousand_pipelined_noops(self):
        c = Conn(self.sink.port)
        self.greet(c)
        c.send(b"NOOP\r\n" * 20000)
        replies = []
        try:
            while True:
                replies.append(c.reply())
        except EOFError:
            pass
        # Answered in order; past the junk-command limit (100) each NOOP
        # counts as an error, as in Postfix, until the error limit's 421.
        self.assertEqual(replies[:100], ["250 2.0.0 Ok"] * 100)
        self.assertTrue(replies[-1].startswith("421 4.7.0"))
        c.close()

    def test_http_request(self):
        c = Conn(self.sink.port)
        self.greet(c)
        c.send("GET / HTTP/1.1\r\nHost: mx\r\nUser-Agent: x\r\nAccept: */*\r\n\r\n")
        self.assertEqual(c.reply(),
                         "221 2.7.0 Error: I can break rules, too. Goodbye.")
        c.close()

    def test_tls_client_hello_on_plain_port(self):
        c = Conn(self.sink.port)
        self.greet(c)
        hello = bytes.fromhex("160301012c010001280303") + os.urandom(32) + \
            b"\x00\x00\x02\x13\x01\x01\x00\x00\xfd" + b"\x00" * 253
        c.send(hello)
        c.send(b"\r\n")
        self.assertTrue(c.reply().startswith("221 2.7.0"))
        c.close()

    def test_overlong_ehlo_and_mail_from(self):
        c = Conn(self.sink.port)
        self.greet(c)
        # Postfix takes command lines up to 2048 octets, cuts longer ones.
        c.send("EHLO " + "h" * 3000 + "\r\n")
        self.assertTrue(c.reply().startswith("250"))
        c.send("MAIL FROM:<" + "a" * 3000 + "@test.example>\r\n")
        self.assertTrue(c.reply().startswith("501 5.1.7"))
        c.close()


class Lifecycle(unittest.TestCase):
    def test_sigterm_keeps_every_record(self):
        sink = Sink()
        try:
            for i in range(5):
                transaction(sink.port, source="127.0.9.%d" % (i + 1))
            c = Conn(sink.port)
            c.reply()
            self.assertEqual(sink.stop(), 0)
            self.assertTrue(c.reply().startswith("421 4.3.2"))
            c.close()
            recs = [json.loads(l) for l in sink.export("jsonl").splitlines()]
            by_ip = {r["ip"]: r for r in recs}
            for i in range(5):
                self.assertEqual(by_ip["127.0.9.%d" % (i + 1)]["messages"], 1)
            self.assertIn("127.0.0.1", by_ip)  # the session cut by SIGTERM
        finally:
            sink.close()

    def test_tarpit_reputation_survives_restart(self):
        sink = Sink()
        try:
            transaction(sink.port, source="127.0.8.1")
            self.assertEqual(sink.stop(), 0)
            db = sink.db
            again = subprocess.Popen(
                [SPAMSINK, "--listen", "127.0.0.1:0", "--db", db,
                 "--api-enabled", "false", "--tarpit-enabled", "true"] +
                executor_args(),
                stderr=subprocess.PIPE, text=True)
            try:
                line = ""
                deadline = time.monotonic() + 10
                while "reputation_loaded" not in line and \
                        time.monotonic() < deadline:
                    line = again.stderr.readline()
                self.assertIn("sources=1", line)
            finally:
                again.terminate()
                again.wait(10)
                again.stderr.close()
        finally:
            sink.close()

    def test_bad_config_names_key_and_line(self):
        out = subprocess.run(
            [SPAMSINK, "--config", "/dev/stdin", "--check-config"],
            input="[smtp]\npersona = \"postfix\"\nmax_recipients = -4\n",
            capture_output=True, text=True, timeout=10)
        self.assertEqual(out.returncode, 1)
        self.assertIn("/dev/stdin:3: smtp.max_recipients", out.stderr)

    def test_port_in_use_names_the_fix(self):
        sink = Sink()
        try:
            out = subprocess.run(
                [SPAMSINK, "--listen", "127.0.0.1:%d" % sink.port,
                 "--ledger-enabled", "false", "--api-enabled", "false"] +
                executor_args(),
                capture_output=True, text=True, timeout=10)
            self.assertEqual(out.returncode, 1)
            self.assertIn("Address already in use", out.stderr)
            self.assertIn("use another port, e.g. --listen 127.0.0.1:", out.stderr)
        finally:
            sink.close()

    @unittest.skipUnless(platform.machine() == "x86_64", "seccomp filter is "
                         "written for x86_64")
    def test_refused_io_uring_falls_back_to_asio_and_says_why(self):
        # A seccomp filter refuses io_uring_setup, as a container runtime
        # or kernel.io_uring_disabled would: "auto" must serve with asio and
        # log why; a demanded io_uring must fail at start and name the fix.
        sink = Sink("--server-executor", "auto", preexec_fn=deny_io_uring)
        try:
            self.assertIn('event=executor executor=asio reason="auto: '
                          'io_uring is unusable: io_uring_setup: Operation '
                          'not permitted', sink.stderr())
            transaction(sink.port)
        finally:
            sink.close()
        out = subprocess.run(
            [SPAMSINK, "--listen", "127.0.0.1:0", "--ledger-enabled",
             "false", "--api-enabled", "false", "--server-executor",
             "io_uring"], capture_output=True, text=True, timeout=10,
            preexec_fn=deny_io_uring)
        self.assertEqual(out.returncode, 1)
        self.assertIn("io_uring is unusable here", out.stderr)


if __name__ == "__main__":
    unittest.main()
