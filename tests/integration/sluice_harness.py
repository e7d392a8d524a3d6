"""Test harness: starts the real `sluice serve` on a free loopback port with a generated config
and gives tests real clients (smtplib, swaks, raw sockets) plus helpers to read the Maildirs.

Environment: SLUICE_BIN (the binary, set by ctest), SLUICE_SOURCE_DIR (the repository).
"""
import atexit
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest


def _private_tmp():
    """Under the test runner, every temporary directory of this process (the harness's, nsd's,
    the scanners', the tests' own) is made inside one that is removed when the process exits,
    so that `make test` leaves nothing behind in /tmp (it used to leave some 300 directories a
    run). A failing test prints the log it needs; SLUICE_KEEP_TMP=1 keeps everything."""
    main = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if not ("unittest" in main or main.startswith("test_")) or tempfile.tempdir:
        return
    root = tempfile.mkdtemp(prefix="sluice-tests-")
    os.chmod(root, 0o755)  # daemons that drop to their own user (clamd, nsd) must get through
    tempfile.tempdir = root
    if not os.environ.get("SLUICE_KEEP_TMP"):
        atexit.register(shutil.rmtree, root, True)


_private_tmp()

BIN = os.environ.get("SLUICE_BIN") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "sluice")
SOURCE_DIR = os.environ.get("SLUICE_SOURCE_DIR") or os.path.join(
    os.path.dirname(__file__), "..", "..")

DEFAULT_RULES = """
rule_set "main" {
  rule {
    name       = "store-all",
    recipients = { "example.test", ".example.test" },
    actions    = {
      add_header { name = "X-Sluice-Rule", value = "store-all" },
      store { maildir = "var/mail/{domain}/{user}" },
    },
  },
}
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_cert(directory, cn="mx.example.test"):
    """A self-signed certificate (EC, quick to make) in directory; returns (cert, key)."""
    os.makedirs(directory, exist_ok=True)
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    if not os.path.exists(cert):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-days", "30",
                        "-subj", "/CN=" + cn, "-keyout", key, "-out", cert],
                       check=True, capture_output=True)
    return cert, key


class Sluice:
    """One sluice process in its own temporary directory (its working directory, so relative
    paths in the config such as var/mail land there)."""

    def __init__(self, rules=DEFAULT_RULES, server_extra="", domains=("example.test",),
                 tls=True, listen=None, config_text=None):
        self.dir = tempfile.mkdtemp(prefix="sluice-test-")
        self.port = free_port()
        self.log_path = os.path.join(self.dir, "sluice.log")
        self.proc = None
        self.clients = []
        if config_text is None:
            # Sender authentication needs DNS, which tests provide only where they test it
            # (test_auth.py starts its own DNS server): off unless the test sets it.
            if "auth_checks" not in server_extra:
                server_extra += "\n  auth_checks = false,"
            tls_line = ""
            if tls:
                make_cert(os.path.join(self.dir, "var", "tls"))
                tls_line = 'tls = { cert = "var/tls/cert.pem", key = "var/tls/key.pem" },'
            listen = listen or '{ "127.0.0.1:%d" }' % self.port
            config_text = """
server {
  listen   = %s,
  hostname = "mx.example.test",
  domains  = { %s },
  data_dir = "var",
  %s
  %s
}
%s
""" % (listen, ", ".join('"%s"' % d for d in domains), tls_line, server_extra, rules)
        self.config_path = os.path.join(self.dir, "sluice.lua")
        self.write_config(config_text)

    def write_config(self, text):
        with open(self.config_path, "w") as f:
            f.write(text)

    # --- process ------------------------------------------------------------------------
    def start(self):
        offset = len(self.read_log())
        self.log = open(self.log_path, "ab")
        cmd = [BIN, "serve", "-c", self.config_path]
        if os.environ.get("SLUICE_VALGRIND"):
            # `make soak`: definite leaks and memory errors make sluice exit 99 at stop.
            cmd = ["valgrind", "-q", "--leak-check=full", "--errors-for-leak-kinds=definite",
                   "--error-exitcode=99", "--log-fd=2"] + cmd
        self.proc = subprocess.Popen(cmd, cwd=self.dir, stdout=self.log, stderr=self.log)
        deadline = time.time() + (120 if os.environ.get("SLUICE_VALGRIND") else 20)
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("sluice exited at start:\n" + self.read_log())
            if "ready" in self.read_log()[offset:]:
                return self
            time.sleep(0.02)
        raise RuntimeError("sluice did not become ready:\n" + self.read_log())

    def signal(self, sig):
        self.proc.send_signal(sig)

    def kill9(self):
        """Crash: SIGKILL, no chance to clean up."""
        self.proc.kill()
        self.proc.wait()
        self.log.close()

    def wait_log(self, pattern, timeout=10, start=0):
        """Waits until the log (from offset start) matches the regex; returns the match."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            m = re.search(pattern, self.read_log()[start:])
            if m:
                return m
            time.sleep(0.02)
        raise AssertionError("log never matched %r:\n%s" % (pattern, self.read_log()))

    def stop(self, expect_clean=True):
        for c in self.clients:
            c.close()
        if not self.proc:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=120 if os.environ.get("SLUICE_VALGRIND") else 40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("sluice did not stop on SIGTERM:\n" + self.read_log())
        # Also when a test stopped it itself: the exit status and sanitizer output still count.
        rc = self.proc.returncode
        self.log.close()
        if expect_clean:
            log = self.read_log()
            if rc != 0 or "ERROR: AddressSanitizer" in log or "runtime error:" in log:
                raise AssertionError("sluice exited %s:\n%s" % (rc, log))
        return rc

    def read_log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def run_cli(self, *args):
        return subprocess.run([BIN] + list(args), cwd=self.dir, capture_output=True, text=True)

    # --- mail ---------------------------------------------------------------------------
    def maildir(self, domain, user, sub="new"):
        d = os.path.join(self.dir, "var", "mail", domain, user, sub)
        if not os.path.isdir(d):
            return []
        return sorted(os.path.join(d, f) for f in os.listdir(d))

    def all_stored(self):
        """Every file in any new/ or tmp/ directory below var/mail."""
        out = []
        for root, _dirs, files in os.walk(os.path.join(self.dir, "var", "mail")):
            if os.path.basename(root) in ("new", "tmp"):
                out += [os.path.join(root, f) for f in files]
        return sorted(out)

    def raw(self, **kw):
        c = RawClient(self.port, **kw)
        self.clients.append(c)
        return c


def tls_client_context():
    """A client TLS context for the tests' self-signed certificate: no verification."""
    import ssl
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def wait_for(pred, timeout=15):
    """Polls pred until it is true (returns True) or timeout seconds pass (returns False)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return False


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def strip_trace(data, n_added=1):
    """Returns the original message from a stored copy: drops Return-Path, the folded Received
    header and n_added headers sluice prepended."""
    lines = data.split(b"\r\n")
    assert lines[0].startswith(b"Return-Path: "), lines[0]
    assert lines[1].startswith(b"Received: "), lines[1]
    i = 2
    while lines[i].startswith(b"\t"):
        i += 1
    return b"\r\n".join(lines[i + n_added:])


class RawClient:
    """A byte-exact SMTP client over a plain socket, for hostile and pipelining cases."""

    def __init__(self, port, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed; pending: %r" % self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("utf-8", "replace")

    def reply(self):
        """Reads one (possibly multi-line) reply; returns (code, full text)."""
        lines = []
        while True:
            line = self._line()
            lines.append(line)
            if len(line) < 4 or line[3] != "-":
                return int(line[:3]), "\n".join(lines)

    def expect(self, code, send=None):
        if send is not None:
            self.send(send)
        got, text = self.reply()
        if got != code:
            raise AssertionError("expected %d, got: %s" % (code, text))
        return text

    def closed(self, timeout=5):
        """True when the server closes the connection (EOF) within timeout."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()


class SluiceTestCase(unittest.TestCase):
    """Starts one server per test (fresh Maildirs); subclasses set class attributes to shape
    the config."""
    rules = DEFAULT_RULES
    server_extra = ""
    domains = ("example.test",)
    tls = True

    def setUp(self):
        self.sluice = Sluice(rules=self.rules, server_extra=self.server_extra,
                             domains=self.domains, tls=self.tls).start()

    def tearDown(self):
        self.sluice.stop()

    def session(self):
        """A raw client past the banner and EHLO."""
        c = self.sluice.raw()
        c.expect(220)
        c.expect(250, "EHLO client.example.net\r\n")
        return c
