"""A private Dovecot (Debian's dovecot-imapd and dovecot-lmtpd) for the tests: started by the test
on loopback with a config of its own under a temporary directory (its own base_dir and
state_dir, users from a passwd-file, Maildirs under the temporary directory), never the system
instance, and stopped at the end.

    d = Dovecot(users={"user@example.test": {}, "full@example.test": {"quota": "1K"}}).start()
    d.lmtp_socket, d.lmtp_port, d.imap_port
    d.fetch_all("user@example.test")   # [bytes of each message in INBOX, in order]
    d.stop()

Every user's password is "secret". A user's Maildir is <dir>/mail/<address> unless the entry
gives "maildir" (e.g. one that sluice's store action writes).
"""
import imaplib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from sluice_harness import free_port

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
PASSWORD = "secret"
MAIL_USER = "mail"
MAIL_UID = pwd.getpwnam(MAIL_USER).pw_uid
MAIL_GID = pwd.getpwnam(MAIL_USER).pw_gid


def available():
    return os.path.exists(DOVECOT) and os.path.exists("/usr/lib/dovecot/lmtp")


class Dovecot:
    def __init__(self, users, lmtp_port=None, imap_port=None):
        self.dir = tempfile.mkdtemp(prefix="dovecot-test-")
        # The login processes run as dovenull and must get through to base_dir.
        os.chmod(self.dir, 0o755)
        self.base_dir = os.path.join(self.dir, "run")
        self.lmtp_socket = os.path.join(self.base_dir, "lmtp-sluice")
        self.lmtp_port = lmtp_port or free_port()
        self.imap_port = imap_port or free_port()
        self.users = dict(users)
        self.log_path = os.path.join(self.dir, "dovecot.log")
        self.conf_path = os.path.join(self.dir, "dovecot.conf")
        self.proc = None
        self._write_config()

    def maildir(self, user):
        return self.users[user].get("maildir") or os.path.join(self.dir, "mail", user)

    def give_to_mail_user(self, path):
        """Makes a tree written by someone else (sluice, as root) the mail user's, as a real
        deployment does by running sluice as that user."""
        for root, dirs, files in os.walk(path):
            os.chown(root, MAIL_UID, MAIL_GID)
            for f in files:
                os.chown(os.path.join(root, f), MAIL_UID, MAIL_GID)

    def _write_config(self):
        with open(os.path.join(self.dir, "passwd"), "w") as f:
            for name, opts in self.users.items():
                extra = ["userdb_mail=maildir:" + self.maildir(name)]
                if opts.get("quota"):
                    extra.append("userdb_quota_rule=*:storage=" + opts["quota"])
                # user:password:uid:gid:gecos:home:shell:extra fields
                f.write("%s:{PLAIN}%s:::::: %s\n" % (name, PASSWORD, " ".join(extra)))
        home = os.path.join(self.dir, "home")
        os.makedirs(os.path.join(self.dir, "state"), exist_ok=True)
        os.makedirs(home, exist_ok=True)
        os.makedirs(os.path.join(self.dir, "mail"), exist_ok=True)
        for d in (home, os.path.join(self.dir, "mail")):
            os.chown(d, MAIL_UID, MAIL_GID)
        # A root-run private instance; Dovecot never gives mail access to root, so mail is
        # read and written as the unprivileged MAIL_USER (Debian's "mail").
        conf = """
instance_name = dovecot-test-{port}
base_dir = {base}
state_dir = {dir}/state
log_path = {log}
info_log_path = {log}
protocols = imap lmtp
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
first_valid_uid = {uid}
first_valid_gid = {gid}
mail_uid = {uid}
mail_gid = {gid}
mail_location = maildir:{dir}/mail/%u
mail_plugins = $mail_plugins quota
lmtp_save_to_detail_mailbox = no
recipient_delimiter = +
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {dir}/passwd
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {dir}/passwd
  default_fields = home={home}/%u
}}
plugin {{
  quota = maildir:User quota
}}
protocol lmtp {{
  mail_plugins = $mail_plugins quota
}}
protocol imap {{
  mail_plugins = $mail_plugins quota imap_quota
}}
service lmtp {{
  unix_listener lmtp-sluice {{
    mode = 0666
  }}
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {lmtp_port}
  }}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = 0
  }}
}}
service submission-login {{
  inet_listener submission {{
    port = 0
  }}
}}
service managesieve-login {{
  inet_listener sieve {{
    port = 0
  }}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
""".format(port=self.imap_port, base=self.base_dir, dir=self.dir, log=self.log_path,
           home=home, uid=MAIL_UID, gid=MAIL_GID, lmtp_port=self.lmtp_port, imap_port=self.imap_port)
        with open(self.conf_path, "w") as f:
            f.write(conf)

    def read_log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def start(self, timeout=20):
        out = open(os.path.join(self.dir, "stdout.log"), "ab")
        self.proc = subprocess.Popen([DOVECOT, "-F", "-c", self.conf_path], stdout=out,
                                     stderr=out)
        out.close()
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                with open(os.path.join(self.dir, "stdout.log"), errors="replace") as f:
                    raise RuntimeError("dovecot exited at start:\n%s\n%s" %
                                       (f.read(), self.read_log()))
            if (os.path.exists(self.lmtp_socket) and self._port_open(self.lmtp_port) and
                    self._port_open(self.imap_port)):
                return self
            time.sleep(0.05)
        raise RuntimeError("dovecot did not start:\n" + self.read_log())

    @staticmethod
    def _port_open(port):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        # The master removes its sockets on a clean stop; wait for the port to close too, so
        # a test that restarts it on the same port does not race the old one.
        deadline = time.time() + 10
        while time.time() < deadline and self._port_open(self.lmtp_port):
            time.sleep(0.05)

    # --- IMAP ---------------------------------------------------------------------------
    def imap(self, user):
        c = imaplib.IMAP4("127.0.0.1", self.imap_port, timeout=10)
        c.login(user, PASSWORD)
        return c

    def fetch_all(self, user, mailbox="INBOX"):
        """The messages of mailbox as IMAP gives them (BODY.PEEK[]), each with its RFC822.SIZE:
        [(bytes, size), ...] in UID order."""
        c = self.imap(user)
        try:
            typ, _ = c.select(mailbox, readonly=True)
            assert typ == "OK", typ
            typ, data = c.uid("FETCH", "1:*", "(RFC822.SIZE BODY.PEEK[])")
            assert typ == "OK", data
            out = []
            for item in data:
                if not isinstance(item, tuple):
                    continue
                m = re.search(rb"RFC822\.SIZE (\d+)", item[0])
                out.append((item[1], int(m.group(1))))
            return out
        finally:
            c.logout()

    def count(self, user, mailbox="INBOX"):
        c = self.imap(user)
        try:
            typ, data = c.select(mailbox, readonly=True)
            assert typ == "OK", data
            return int(data[0])
        finally:
            c.logout()
