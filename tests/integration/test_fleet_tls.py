"""TLS to the database: sslmode=verify-full with the operator's CA.

The private cluster (test_fleet.PgCluster) gets ssl=on, a CA and a server
certificate for "localhost" made with the openssl CLI, a TCP listener on a
loopback port and a pg_hba.conf that takes TCP logins over TLS only
(hostssl). A sink with sslmode=verify-full and sslrootcert = that CA
writes its records, and pg_stat_ssl shows its connections encrypted; a sink
given another CA refuses to start, naming ledger.postgresql_url.
"""
import os
import socket
import subprocess
import tempfile
import time
import unittest

from harness import Sink, transaction
from test_fleet import PASSWORD, PgCluster


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True,
                   capture_output=True, timeout=60)


def make_ca(d, name):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
            "-subj", "/CN=" + name, "-keyout", name + ".key", "-out",
            name + ".crt", cwd=d)


class Tls(unittest.TestCase):
    def test_verify_full_with_the_ca_and_refused_with_another(self):
        pg = PgCluster()
        self.addCleanup(pg.close)
        pg.sql("postgres", "CREATE DATABASE fleet")
        tmp = tempfile.TemporaryDirectory(prefix="spamsink-pgtls-")
        self.addCleanup(tmp.cleanup)
        d = tmp.name
        make_ca(d, "fleet-ca")
        make_ca(d, "other-ca")
        openssl("req", "-newkey", "ec", "-pkeyopt",
                "ec_paramgen_curve:prime256v1", "-nodes", "-subj",
                "/CN=localhost", "-keyout", "server.key", "-out",
                "server.csr", cwd=d)
        with open(os.path.join(d, "san.ext"), "w") as f:
            f.write("subjectAltName=DNS:localhost\n")
        openssl("x509", "-req", "-in", "server.csr", "-CA", "fleet-ca.crt",
                "-CAkey", "fleet-ca.key", "-CAcreateserial", "-days", "2",
                "-extfile", "san.ext", "-out", "server.crt", cwd=d)
        # The server reads its key as the cluster's owner, mode 0600.
        data = os.path.join(pg.dir, "data")
        for name in ("server.crt", "server.key"):
            dst = os.path.join(data, name)
            with open(os.path.join(d, name), "rb") as a, open(dst, "wb") as b:
                b.write(a.read())
            os.chmod(dst, 0o600)
            if pg.uid is not None:
                os.chown(dst, pg.uid, pg.gid)
        hba = os.path.join(data, "pg_hba.conf")
        with open(hba, "w") as f:
            f.write("local all all scram-sha-256\n"
                    "hostssl all all 127.0.0.1/32 scram-sha-256\n")
        pg.stop()
        # One server, one port: TCP on 127.0.0.1 and the socket in pg.dir.
        pg.port = free_port()
        pg.extra = ["-c", "ssl=on", "-c", "listen_addresses=127.0.0.1"]
        pg.start()
        pwfile = os.path.join(d, "pw")
        with open(pwfile, "w") as f:
            f.write(PASSWORD + "\n")

        def config(ca):
            url = ("host=localhost hostaddr=127.0.0.1 port=%d "
                   "dbname=fleet user=spamsink sslmode=verify-full "
                   "sslrootcert=%s" % (pg.port, os.path.join(d, ca)))
            return ("[ledger]\nstore = \"postgresql\"\n"
                    "postgresql_url = \"%s\"\n"
                    "postgresql_password_file = \"%s\"\n"
                    "sink_id = \"sink-t\"\nspill_path = \"%s\"\n" %
                    (url, pwfile, os.path.join(d, "sink.spill")))

        sink = Sink(config=config("fleet-ca.crt"))
        self.addCleanup(sink.close)
        for i in range(20):
            self.assertTrue(transaction(sink.port, "127.6.0.%d" % (1 + i))
                            .startswith("250"))
        deadline = time.monotonic() + 20
        n = 0
        while time.monotonic() < deadline:
            n = int(pg.sql("fleet", "SELECT coalesce(sum(connections), 0) "
                           "FROM sources")[0][0])
            if n >= 20:
                break
            time.sleep(0.05)
        self.assertEqual(n, 20)
        rows = pg.sql("fleet", "SELECT s.ssl, s.version FROM pg_stat_ssl s "
                      "JOIN pg_stat_activity a USING (pid) WHERE "
                      "a.application_name = 'spamsink'")
        self.assertTrue(rows, "no spamsink connection")
        for ssl, version in rows:
            self.assertEqual(ssl, "t")
            self.assertTrue(version.startswith("TLSv1."), version)
        self.assertEqual(sink.stop(), 0, sink.stderr())

        with self.assertRaises(RuntimeError) as e:
            Sink(config=config("other-ca.crt"))
        self.assertIn("ledger.postgresql_url", str(e.exception))
        self.assertIn("certificate verify failed", str(e.exception))


if __name__ == "__main__":
    unittest.main()
