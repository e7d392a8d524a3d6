"""Real scanners for the scan tests: clamd and rspamd from Debian, each started in the
foreground on a free loopback port with a throw-away config, plus stand-ins for a scanner that
is down or never answers.

clamd works offline: its only signature database is an MD5 (.hdb) signature of the EICAR test
file that this module writes (no freshclam, no download). rspamd runs with Debian's stock rules
(/etc/rspamd) through a top-level config of its own that binds the normal worker to a free port
and keeps its state, pid and logs in a temporary directory. rspamd compiles its regexps at start
(10-20 s, longer on a busy machine): start() waits for the port, never a fixed time.
"""
import hashlib
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time

from sluice_harness import free_port

# Assembled here so that this file does not itself carry the test signature.
EICAR = (b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE" + b"!$H+H*")
GTUBE = b"XJS*C4JDBQADN1.NSBN3*2IDNEN*" + b"GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
EICAR_SIGNATURE = "Eicar-Signature"


def find_program(name):
    return shutil.which(name) or next(
        (p for p in ("/usr/sbin/" + name, "/usr/bin/" + name) if os.access(p, os.X_OK)), None)


CLAMD = find_program("clamd")
CLAMSCAN = find_program("clamscan")
RSPAMD = find_program("rspamd")


def wait_port(port, proc, timeout, what, log_path):
    """Waits until something accepts on 127.0.0.1:port; fails early when proc exits."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("%s exited (%s) at start:\n%s" % (what, proc.returncode,
                                                                  read_text(log_path)))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("%s did not listen on port %d within %d s:\n%s" % (
        what, port, timeout, read_text(log_path)))


def read_text(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")[-4000:]
    except FileNotFoundError:
        return ""


class _Daemon:
    proc = None
    log = None

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.log:
            self.log.close()
            self.log = None
        shutil.rmtree(self.dir, ignore_errors=True)


class Clamd(_Daemon):
    """clamd on 127.0.0.1:port and on a Unix socket, knowing only the EICAR signature."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="sluice-clamd-")
        self.port = free_port()
        self.socket_path = os.path.join(self.dir, "clamd.sock")
        self.log_path = os.path.join(self.dir, "clamd.log")
        db = os.path.join(self.dir, "db")
        os.mkdir(db)
        self.db_file = os.path.join(db, "eicar.hdb")
        with open(self.db_file, "w") as f:  # MD5:size:name
            f.write("%s:%d:%s\n" % (hashlib.md5(EICAR).hexdigest(), len(EICAR), EICAR_SIGNATURE))
        self.conf = os.path.join(self.dir, "clamd.conf")
        with open(self.conf, "w") as f:
            f.write("Foreground yes\nDatabaseDirectory %s\nTCPAddr 127.0.0.1\nTCPSocket %d\n"
                    "LocalSocket %s\nPidFile %s\nLogFile %s\nLogTime yes\n"
                    "SelfCheck 0\n" % (db, self.port, self.socket_path,
                                       os.path.join(self.dir, "clamd.pid"),
                                       os.path.join(self.dir, "clamd-file.log")))

    def check_database(self):
        """The signature file really matches EICAR (clamscan -d FILE on the test file)."""
        sample = os.path.join(self.dir, "eicar.txt")
        with open(sample, "wb") as f:
            f.write(EICAR)
        r = subprocess.run([CLAMSCAN, "--no-summary", "-d", self.db_file, sample],
                           capture_output=True, text=True)
        os.unlink(sample)
        if "FOUND" not in r.stdout:
            raise RuntimeError("clamscan does not find EICAR with %s: %s %s" % (
                self.db_file, r.stdout, r.stderr))

    def start(self):
        if CLAMSCAN:
            self.check_database()
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([CLAMD, "-c", self.conf], stdout=self.log,
                                     stderr=subprocess.STDOUT, cwd=self.dir)
        wait_port(self.port, self.proc, 120, "clamd", self.log_path)
        return self


RSPAMD_CONF = """# Debian's stock rules, our own workers, paths and logging.
.include "$CONFDIR/common.conf"
options {
    pidfile = "$RUNDIR/rspamd.pid";
    .include "$CONFDIR/options.inc"
    .include(try=true; priority=1,duplicate=merge) "$LOCAL_CONFDIR/local.d/options.inc"
}
logging {
    type = "console";
    level = "notice";
}
worker "normal" {
    bind_socket = "127.0.0.1:%d";
    .include "$CONFDIR/worker-normal.inc"
    count = 1;
}
"""


class Rspamd(_Daemon):
    """rspamd's normal worker on 127.0.0.1:port with the stock rules. local_d maps file
    names of local.d/ to their text, e.g. "options.inc" with `dns { nameserver = ... }` of a
    test DNS server, or "spf.conf"."""

    def __init__(self, local_d=None):
        self.dir = tempfile.mkdtemp(prefix="sluice-rspamd-")
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.log_path = os.path.join(self.dir, "rspamd.log")
        for d in ("local", "local/local.d", "db", "run", "log"):
            os.mkdir(os.path.join(self.dir, d))
        for name, text in (local_d or {}).items():
            with open(os.path.join(self.dir, "local", "local.d", name), "w") as f:
                f.write(text)
        self.conf = os.path.join(self.dir, "rspamd.conf")
        with open(self.conf, "w") as f:
            f.write(RSPAMD_CONF % self.port)

    def start(self):
        args = [RSPAMD, "-f", "-c", self.conf]
        for var, sub in (("LOCAL_CONFDIR", "local"), ("DBDIR", "db"), ("RUNDIR", "run"),
                         ("LOGDIR", "log")):
            args.append("--var=%s=%s" % (var, os.path.join(self.dir, sub)))
        if os.getuid() == 0:  # rspamd refuses root unless told whom to run as
            args += ["-i", "-u", "root", "-g", "root"]
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT,
                                     cwd=self.dir)
        wait_port(self.port, self.proc, 300, "rspamd", self.log_path)
        return self


class Listener:
    """A loopback TCP server that accepts connections, reads what it is sent and never
    answers: a scanner that hangs. Counts the connections it accepted."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.conns = []
        self.stopping = False
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.cond:
                self.accepted += 1
                self.conns.append(conn)
                self.cond.notify_all()
            threading.Thread(target=self._drain, args=(conn,), daemon=True).start()

    @staticmethod
    def _drain(conn):
        try:
            while conn.recv(65536):
                pass
        except OSError:
            pass

    def wait_accepted(self, n, timeout=30):
        with self.cond:
            return self.cond.wait_for(lambda: self.accepted >= n, timeout)

    def close(self):
        self.stopping = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept() in _serve
        except OSError:
            pass
        self.sock.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass


def dead_port():
    """A loopback port with nothing listening."""
    return free_port()
