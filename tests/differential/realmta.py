"""Private instances of the real mail servers, for the differential tests.

Each instance lives in its own temporary directory (configuration, queue,
data), listens on a loopback port only, relays for any domain and discards
every message. It is started by the test and stopped by its pid; nothing
of the machine's own mail set-up is read or changed.
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

HOSTNAME = "mx.test.example"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), 0.5) as s:
                s.settimeout(5)
                return s.recv(512).startswith(b"220")
        except OSError:
            time.sleep(0.05)
    return False


def snakeoil(directory, hostname=HOSTNAME):
    """Makes a certificate exactly as Debian's make-ssl-cert does for the
    snakeoil pair (ssl-cert's template, RSA 2048, 3650 days, SHA-256), in
    directory; returns (cert, key)."""
    with open("/usr/share/ssl-cert/ssleay.cnf") as f:
        cnf = f.read()
    cnf = cnf.replace("@HostName@", hostname).replace(
        "@SubjectAltName@", "DNS:" + hostname)
    path = os.path.join(directory, "ssleay.cnf")
    with open(path, "w") as f:
        f.write(cnf)
    cert = os.path.join(directory, "ssl-cert-snakeoil.pem")
    key = os.path.join(directory, "ssl-cert-snakeoil.key")
    subprocess.run(["openssl", "req", "-config", path, "-new", "-x509",
                    "-days", "3650", "-nodes", "-sha256", "-out", cert,
                    "-keyout", key], check=True, capture_output=True,
                   timeout=60)
    return cert, key


# The main.cf a fresh Debian 12 "Internet Site" install writes (postinst:
# main.cf.debian + main.cf.tls + the relay restrictions), then the
# differences this test needs: a private instance on a loopback port that
# relays for every domain and discards.
DEBIAN_MAIN_CF = """\
smtpd_banner = $myhostname ESMTP $mail_name (Debian/GNU)
biff = no
append_dot_mydomain = no
readme_directory = no
compatibility_level = 3.6
smtpd_tls_cert_file={cert}
smtpd_tls_key_file={key}
smtpd_tls_security_level=may
smtp_tls_CApath=/etc/ssl/certs
smtp_tls_security_level=may
smtp_tls_session_cache_database = btree:${{data_directory}}/smtp_scache
smtpd_relay_restrictions = permit_mynetworks permit_sasl_authenticated defer_unauth_destination
myhostname = {host}
alias_maps =
alias_database =
myorigin = $myhostname
mydestination =
relayhost =
mynetworks = 127.0.0.0/8 [::ffff:127.0.0.0]/104 [::1]/128
mailbox_size_limit = 0
recipient_delimiter = +
inet_protocols = ipv4
# --- private instance ---
inet_interfaces = 127.0.0.1
config_directory = {dir}/etc
queue_directory = {dir}/spool
data_directory = {dir}/lib
relay_domains = static:ALL
# Stock Debian has relay_domains empty, so no fast-flush domains (ETRN).
fast_flush_domains =
default_transport = discard
relay_transport = discard
local_transport = discard
maillog_file = {dir}/maillog
maillog_file_prefixes = {dir}
smtpd_client_connection_rate_limit = 0
smtpd_client_connection_count_limit = 0
"""

# Debian's master.cf services, without chroot (the chroot needs copies of
# /etc files inside the queue directory) and with smtpd on the test port.
MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class _PrivateMta:
    """What a private MTA run by these tests shares: its temporary
    directory, the daemon we started (stopped by its pid; it stops its own
    children) and the log files it wrote there."""

    def _start(self, argv, env=None, name="mta"):
        self.log = open(os.path.join(self.tmp.name, "daemon.log"), "w+")
        self.proc = subprocess.Popen(argv, env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        if not wait_port(self.port, self.proc):
            out = self.logs()
            self.close()
            raise RuntimeError(name + " did not start: " + out)

    def logs(self):
        text = ""
        for root, _, files in os.walk(self.tmp.name):
            for name in sorted(files):
                path = os.path.join(root, name)
                # Regular files only: Postfix's spool holds a "postlog"
                # socket.
                if name.endswith("log") and os.path.isfile(path):
                    with open(path, errors="replace") as f:
                        text += f.read()
        return text

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def close(self):
        self.stop()
        self.log.close()
        self.tmp.cleanup()


class Postfix(_PrivateMta):
    """A private Postfix (Debian's package) on 127.0.0.1:port."""

    def __init__(self, extra_main_cf=""):
        self.tmp = tempfile.TemporaryDirectory(prefix="spamsink-postfix-")
        d = self.tmp.name
        os.chmod(d, 0o755)
        self.port = free_port()
        etc = os.path.join(d, "etc")
        os.makedirs(etc)
        self.cert, self.key = snakeoil(etc)
        with open(os.path.join(etc, "main.cf"), "w") as f:
            f.write(DEBIAN_MAIN_CF.format(dir=d, host=HOSTNAME, cert=self.cert,
                                          key=self.key) + extra_main_cf)
        with open(os.path.join(etc, "master.cf"), "w") as f:
            f.write(MASTER_CF.format(port=self.port))
        for sub in ("spool", "lib"):
            os.makedirs(os.path.join(d, sub))
        shutil.chown(os.path.join(d, "lib"), "postfix", "postfix")
        with open(os.path.join(d, "maillog"), "w"):
            pass
        shutil.chown(os.path.join(d, "maillog"), "postfix", "postfix")
        env = dict(os.environ, MAIL_CONFIG=etc)
        # Creates the queue's subdirectories with their owners and modes.
        chk = subprocess.run(["postfix", "-c", etc, "check"], env=env,
                             capture_output=True, text=True, timeout=60)
        if chk.returncode != 0:
            raise RuntimeError("postfix check failed: " + chk.stdout +
                               chk.stderr + self.logs())
        self._start(["/usr/lib/postfix/sbin/master", "-c", etc, "-d"],
                    env=env, name="postfix")


# Exim 4.96 from Debian's exim4-daemon-light, unpacked by scripts/setup.sh
# (it conflicts with the installed postfix) into this cache directory.
EXIM_ROOT = os.environ.get("SPAMSINK_MTA_CACHE",
                           "/var/cache/spamsink-mta") + "/root"
EXIM = EXIM_ROOT + "/usr/sbin/exim4"

# Exim's built-in defaults (which Debian's split configuration keeps for
# the SMTP dialogue) with: any recipient accepted, everything routed to
# :blackhole:, Debian's 50 MB size limit lowered to spamsink's default so
# SIZE compares, the snakeoil certificate, no DNS or ident lookups.
EXIM_CONF = """\
primary_hostname = {host}
daemon_smtp_ports = {port}
local_interfaces = 127.0.0.1
spool_directory = {dir}/spool
log_file_path = {dir}/log/%slog
pid_file_path = {dir}/exim.pid
exim_user = Debian-exim
exim_group = Debian-exim
message_size_limit = 10240000
host_lookup =
rfc1413_hosts =
tls_advertise_hosts = *
tls_certificate = {cert}
tls_privatekey = {key}
acl_smtp_rcpt = accept_all
smtp_receive_timeout = {timeout}s

begin acl
accept_all:
  accept

begin routers
blackhole:
  driver = redirect
  data = :blackhole:
"""


class Exim(_PrivateMta):
    """A private Exim (Debian's exim4-daemon-light) on 127.0.0.1:port."""

    available = os.path.exists(EXIM)

    def __init__(self, timeout=300):
        self.tmp = tempfile.TemporaryDirectory(prefix="spamsink-exim-")
        d = self.tmp.name
        os.chmod(d, 0o755)
        self.port = free_port()
        for sub in ("spool", "log"):
            os.makedirs(os.path.join(d, sub))
            shutil.chown(os.path.join(d, sub), "Debian-exim", "Debian-exim")
        self.cert, self.key = snakeoil(d)
        shutil.chown(self.key, "Debian-exim", "Debian-exim")
        conf = os.path.join(d, "exim.conf")
        with open(conf, "w") as f:
            f.write(EXIM_CONF.format(dir=d, host=HOSTNAME, port=self.port,
                                     cert=self.cert, key=self.key,
                                     timeout=timeout))
        # -bdf: daemon in the foreground; -q none: no queue runner.
        self._start([EXIM, "-C", conf, "-bdf", "-oX", str(self.port)],
                    name="exim")


# Sendmail 8.17.1.9 from Debian's sendmail-bin, sendmail-base and
# sendmail-cf, unpacked by scripts/setup.sh into their own cache root
# (sendmail-bin conflicts with postfix and exim; its libraries are ordinary
# dependencies).
SENDMAIL_ROOT = os.environ.get("SPAMSINK_MTA_CACHE",
                               "/var/cache/spamsink-mta") + "/sendmail-root"
SENDMAIL = SENDMAIL_ROOT + "/usr/libexec/sendmail/sendmail"

# Appended to Debian's own sendmail.mc (cf/debian/sendmail.mc, which
# sendmailconfig installs as /etc/mail/sendmail.mc), before
# MAILER_DEFINITIONS: what a private instance needs. Relaying for every
# domain, no DNS for addresses, and delivery to a closed loopback port, so
# that accepted messages stay in the private queue (removed with it).
SENDMAIL_MC_EXTRA = """\
define(`confDOMAIN_NAME', `{host}')dnl
define(`QUEUE_DIR', `{dir}/spool/mqueue')dnl
define(`confTRUSTED_USER', `root')dnl
define(`confSERVICE_SWITCH_FILE', `{dir}/etc/service.switch')dnl
define(`confHOSTS_FILE', `{dir}/etc/hosts')dnl
define(`confTO_IDENT', `0s')dnl
define(`confTO_COMMAND', `{timeout}s')dnl
define(`SMART_HOST', `[127.0.0.1]')dnl
define(`RELAY_MAILER_ARGS', `TCP $h 9')dnl
define(`ESMTP_MAILER_ARGS', `TCP $h 9')dnl
FEATURE(`promiscuous_relay')dnl
FEATURE(`accept_unresolvable_domains')dnl
"""


class Sendmail(_PrivateMta):
    """A private Sendmail (Debian's sendmail-bin) on 127.0.0.1:port, with
    Debian's sendmail.mc (m4 tree copied with its paths pointed into the
    temporary directory). Runs as root (Debian's runs as root too and
    drops to smmta only for delivery); no system user is needed.

    Sendmail resolves its own host name (A and AAAA) at start: where the
    resolver is unreachable that costs about a minute, so the tests run
    it inside a network namespace of their own (test_sendmail.py), where
    a DNS query fails at once."""

    available = os.path.exists(SENDMAIL)

    def __init__(self, timeout=300):
        self.tmp = tempfile.TemporaryDirectory(prefix="spamsink-sendmail-")
        d = self.tmp.name
        self.port = free_port()
        share = SENDMAIL_ROOT + "/usr/share/sendmail"
        shutil.copytree(share + "/cf", d + "/cf", symlinks=True)
        for root, _, files in os.walk(d + "/cf"):
            for name in files:
                path = os.path.join(root, name)
                if os.path.islink(path):
                    continue
                with open(path, errors="surrogateescape") as f:
                    text = f.read()
                new = (text.replace("/usr/share/sendmail", d)
                       .replace("/etc/mail", d + "/etc")
                       .replace("/var/lib/sendmail", d + "/lib")
                       .replace("/var/run/sendmail", d + "/run"))
                if new != text:
                    with open(path, "w", errors="surrogateescape") as f:
                        f.write(new)
        for sub in ("etc", "lib", "run/mta", "spool/mqueue"):
            os.makedirs(os.path.join(d, sub))
        os.chmod(d + "/spool/mqueue", 0o700)
        with open(d + "/cf/debian/sendmail.mc") as f:
            mc = f.read()
        # Debian's file but: the MTA daemon on the test port, no MSA, no
        # dialup/provider includes (sendmailconfig writes those files).
        mc = mc.replace("Port=smtp, Addr=127.0.0.1",
                        f"Port={self.port}, Addr=127.0.0.1")
        mc = "\n".join(line for line in mc.splitlines()
                       if "MSP-v4" not in line and "dialup.m4" not in line
                       and "provider.m4" not in line) + "\n"
        mc = mc.replace("MAILER_DEFINITIONS\n", SENDMAIL_MC_EXTRA.format(
            host=HOSTNAME, dir=d, timeout=timeout) + "MAILER_DEFINITIONS\n")
        with open(d + "/sendmail.mc", "w") as f:
            f.write(mc)
        cf = d + "/sendmail.cf"
        with open(cf, "w") as out:
            subprocess.run(["m4", d + "/sendmail.mc"], stdout=out, check=True,
                           stderr=subprocess.DEVNULL, timeout=60)
        shutil.copy(SENDMAIL_ROOT + "/etc/mail/helpfile", d + "/etc/helpfile")
        for name in ("local-host-names", "trusted-users"):
            open(os.path.join(d, "etc", name), "w").close()
        with open(d + "/etc/service.switch", "w") as f:
            f.write("hosts\tfiles\naliases\tfiles\n")
        with open(d + "/etc/hosts", "w") as f:
            f.write("127.0.0.1\tlocalhost\n")
        subprocess.run([SENDMAIL_ROOT + "/usr/libexec/sendmail/makemap",
                        "-C", cf, "hash", d + "/etc/access"],
                       input=b"", check=True, capture_output=True, timeout=60)
        # Debian's /etc/aliases (postmaster -> root), built as newaliases
        # does: without it every local recipient is deferred ("will queue").
        with open(d + "/etc/aliases", "w") as f:
            f.write("mailer-daemon: postmaster\npostmaster: root\n")
        subprocess.run([SENDMAIL, "-C", cf, "-bi"], check=True,
                       capture_output=True, timeout=60)
        # -bD: daemon in the foreground; no -q: no queue runner.
        self._start([SENDMAIL, "-C", cf, "-bD"], name="sendmail")
