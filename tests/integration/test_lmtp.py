"""The lmtp action against a real Dovecot (dovecot_harness.py): delivered over LMTP and read back
over IMAP byte for byte, the answers a full mailbox and an unknown user deserve, Dovecot down
(451 in the session, or the spool and exactly one copy later), pooled connections, and the
Maildirs that `store` writes read by the same Dovecot. The protocol misbehaviours a real Dovecot
cannot produce (garbage, a close in the middle of DATA, silence) use a tiny fake server."""
import os
import re
import smtplib
import socket
import threading
import time
import unittest

from dovecot_harness import Dovecot, available
from sluice_harness import Sluice, read_file, wait_for
from test_config import assert_action_errors

BODY = (b"Subject: to the mailbox\r\nMessage-ID: <lmtp-1@example.net>\r\n\r\n"
        b".a line that starts with a dot\r\n..two dots\r\nlast line\r\n")


def lmtp_rules(target, extra="", before="", after=""):
    return """
rule_set "main" {
  rule { name = "deliver", recipients = { "example.test" }, actions = {
    add_header { name = "X-Sluice-Rule", value = "deliver" },
    %s
    lmtp { %s %s },
    %s
  } },
}
""" % (before, target, extra, after)


def sock_target(d):
    return 'socket = "%s",' % d.lmtp_socket


def send(s, rcpts, body=BODY, sender="alice@example.net"):
    with smtplib.SMTP("127.0.0.1", s.port, timeout=30) as c:
        return c.sendmail(sender, rcpts, body)


def smtp_error(s, rcpts, body=BODY):
    """(code, text) of the refusal of DATA."""
    try:
        send(s, rcpts, body)
    except smtplib.SMTPDataError as e:
        return e.smtp_code, e.smtp_error.decode()
    except smtplib.SMTPRecipientsRefused as e:
        code, text = list(e.recipients.values())[0]
        return code, text.decode()
    raise AssertionError("the message was accepted:\n" + s.read_log())


def split_dovecot_headers(data):
    """Dovecot's final-delivery headers (Return-Path, its LMTP Received) and the rest."""
    lines = data.split(b"\r\n")
    assert lines[0].startswith(b"Return-Path: <"), lines[0]
    assert lines[1].startswith(b"Received: from ") and b"with LMTP" in data.split(b"\r\n\r\n")[0]
    i = 2
    while lines[i].startswith(b"\t"):
        i += 1
    return lines[0], b"\r\n".join(lines[i:])


@unittest.skipUnless(available(), "dovecot-imapd and dovecot-lmtpd are not installed")
class DovecotLmtp(unittest.TestCase):
    def dovecot(self, users=None, **kw):
        d = Dovecot(users or {"user@example.test": {}, "other@example.test": {},
                              "full@example.test": {"quota": "1K"}}, **kw).start()
        self.addCleanup(d.stop)
        return d

    def sluice(self, rules, server_extra=""):
        s = Sluice(rules=rules, server_extra=server_extra, tls=False).start()
        self.addCleanup(s.stop)
        return s

    def test_delivered_and_read_back_over_imap_byte_for_byte(self):
        d = self.dovecot()
        s = self.sluice(lmtp_rules(sock_target(d)))
        send(s, ["user@example.test", "other@example.test"])
        for user in ("user@example.test", "other@example.test"):
            msgs = d.fetch_all(user)
            self.assertEqual(len(msgs), 1, s.read_log())
            data, size = msgs[0]
            self.assertEqual(size, len(data))
            return_path, rest = split_dovecot_headers(data)
            # One Return-Path, the LMTP server's (final delivery), with the envelope sender.
            self.assertEqual(return_path, b"Return-Path: <alice@example.net>")
            self.assertEqual(data.count(b"\r\nReturn-Path:"), 0)
            # Then sluice's trace headers, then exactly what was sent (dots unstuffed).
            self.assertRegex(rest, rb"^Received: from \S+ \(\S+ \[127\.0\.0\.1\]\)\r\n"
                                   rb"\tby mx\.example\.test \(sluice\) with ESMTP\r\n"
                                   rb"\tid [0-9A-F]+; [^\r]+\r\nX-Sluice-Rule: deliver\r\n")
            self.assertTrue(rest.endswith(b"\r\nX-Sluice-Rule: deliver\r\n" + BODY), rest)
        # The message line names the action; the metrics count it.
        self.assertRegex(s.read_log(), r"deliver/lmtp:ok")

    def test_connections_are_pooled_and_a_broken_one_is_replaced(self):
        d = self.dovecot()
        s = self.sluice(lmtp_rules(sock_target(d)))
        for _ in range(3):
            send(s, ["user@example.test"])
        self.assertEqual(d.count("user@example.test"), 3)
        self.assertEqual(len(re.findall(r"lmtp\(\d+\): Info: Connect from local", d.read_log())),
                         1, d.read_log())
        # A restart of Dovecot breaks the pooled connection: the next message goes out over a
        # fresh one, and only once.
        d.stop()
        d.start()
        send(s, ["user@example.test"])
        self.assertEqual(d.count("user@example.test"), 4, s.read_log())

    def test_over_quota_gets_552_and_unknown_user_550(self):
        d = self.dovecot()
        s = self.sluice(lmtp_rules(sock_target(d)))
        big = b"Subject: big\r\n\r\n" + (b"x" * 70 + b"\r\n") * 40
        code, text = smtp_error(s, ["full@example.test"], big)
        self.assertEqual(code, 552, text)
        self.assertTrue(text.startswith("5.2.2 "), text)
        code, text = smtp_error(s, ["nobody@example.test"])
        self.assertEqual(code, 550, text)
        self.assertTrue(text.startswith("5.1.1 "), text)
        # With a recipient that can take it, the message is accepted; the refusal of the other
        # one becomes a DSN (here not sent: the sender is not authenticated) as for bounces.
        send(s, ["user@example.test", "nobody@example.test"])
        self.assertEqual(d.count("user@example.test"), 1)
        s.wait_log(r"nobody@example.test")
        self.assertEqual(d.count("full@example.test"), 0)

    def test_dovecot_down_gives_451_and_nothing_is_delivered_twice(self):
        d = self.dovecot()
        s = self.sluice(lmtp_rules(sock_target(d)))
        d.stop()
        code, text = smtp_error(s, ["user@example.test"])
        self.assertEqual(code, 451, text)
        self.assertRegex(s.read_log(), r"LMTP unix:\S+: connect: ")
        d.start()
        send(s, ["user@example.test"])
        self.assertEqual(d.count("user@example.test"), 1)

    def test_on_failure_retry_spools_and_delivers_once_when_dovecot_returns(self):
        d = self.dovecot()
        s = self.sluice(lmtp_rules(sock_target(d), 'on_failure = "retry"'),
                        "retry_initial_ms = 200, retry_max_ms = 400,")
        d.stop()
        send(s, ["user@example.test", "other@example.test"])
        s.wait_log(r"action=lmtp attempts=1 outcome=retry")
        d.start()
        s.wait_log(r"action=lmtp attempts=\d+ outcome=delivered", timeout=20)
        self.assertEqual(d.count("user@example.test"), 1)
        self.assertEqual(d.count("other@example.test"), 1)
        self.assertFalse(os.listdir(os.path.join(s.dir, "var", "spool", "jobs")))

    def test_store_before_it_committed_so_the_rest_is_spooled(self):
        d = self.dovecot()
        s = self.sluice(lmtp_rules(sock_target(d), before='store { maildir = "var/mail/{domain}/{user}" },'),
                        "retry_initial_ms = 200, retry_max_ms = 400,")
        d.stop()
        send(s, ["user@example.test"])  # accepted: the stored copy is kept
        self.assertEqual(len(s.maildir("example.test", "user")), 1)
        s.wait_log(r"recipient\(s\) not delivered .* go to the spool")
        d.start()
        s.wait_log(r"action=lmtp attempts=\d+ outcome=delivered", timeout=20)
        self.assertEqual(d.count("user@example.test"), 1)
        self.assertEqual(len(s.maildir("example.test", "user")), 1)

    def test_second_lmtp_down_after_the_first_delivered(self):
        a = self.dovecot()
        b = self.dovecot()
        s = self.sluice(lmtp_rules(sock_target(a), after="lmtp { socket = \"%s\" }," % b.lmtp_socket),
                        "retry_initial_ms = 200, retry_max_ms = 400,")
        b.stop()
        send(s, ["user@example.test"])
        self.assertEqual(a.count("user@example.test"), 1)
        s.wait_log(r"action=lmtp attempts=1 outcome=retry")
        b.start()
        s.wait_log(r"action=lmtp attempts=\d+ outcome=delivered", timeout=20)
        self.assertEqual(b.count("user@example.test"), 1)
        self.assertEqual(a.count("user@example.test"), 1)

    def test_tcp_address_and_rcpt_template(self):
        d = self.dovecot()
        s = self.sluice(lmtp_rules('address = "127.0.0.1:%d",' % d.lmtp_port,
                                   'rcpt = "other@{domain}"'))
        send(s, ["user+tag@example.test", "user@example.test"])
        # Both envelope recipients map to one mailbox: it gets the message once.
        self.assertEqual(d.count("other@example.test"), 1)
        self.assertEqual(d.count("user@example.test"), 0)

    def test_sluice_test_shows_target_and_recipient(self):
        d = self.dovecot()
        s = self.sluice(lmtp_rules(sock_target(d), 'rcpt = "{user}@{domain}"'))
        msg = os.path.join(s.dir, "m.eml")
        with open(msg, "wb") as f:
            f.write(BODY)
        r = s.run_cli("test", "-c", s.config_path, "--from", "a@example.net", "--to",
                      "user+x@example.test", msg)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("LMTP unix:%s; user+x@example.test -> RCPT TO:<user@example.test>"
                      % d.lmtp_socket, r.stdout)
        self.assertEqual(d.count("user@example.test"), 0)

    def test_store_maildirs_are_read_by_dovecot(self):
        s = self.sluice("""
rule_set "main" {
  rule { name = "keep", recipients = { "example.test" }, actions = {
    store { maildir = "var/mail/{domain}/{user}" } } },
}
""")
        bodies = [b"Subject: one\r\n\r\nshort\r\n",
                  b"Subject: two\r\n\r\n" + (b"y" * 76 + b"\r\n") * 70,
                  b"Subject: three\r\n\r\n.dot\r\n\r\n\r\nend\r\n"]
        for b in bodies:
            send(s, ["user@example.test"], b)
        root = os.path.join(s.dir, "var", "mail", "example.test", "user")
        files = s.maildir("example.test", "user")
        self.assertEqual(len(files), 3)
        for f in files:
            self.assertTrue(f.endswith(",S=%d" % os.path.getsize(f)), f)
        stored = sorted(read_file(f) for f in files)
        for p in (s.dir, os.path.join(s.dir, "var")):
            os.chmod(p, 0o755)
        d = self.dovecot({"user@example.test": {"maildir": root}})
        d.give_to_mail_user(os.path.join(s.dir, "var", "mail"))
        got = d.fetch_all("user@example.test")
        self.assertEqual(sorted(m for m, _ in got), stored)
        for m, size in got:
            self.assertEqual(size, len(m))
        # Nothing but the three messages in new/ and cur/ (Dovecot keeps its indexes beside
        # them, in the Maildir's root), nothing left in tmp/.
        names = os.listdir(os.path.join(root, "new")) + os.listdir(os.path.join(root, "cur"))
        self.assertEqual(len(names), 3, names)
        for n in names:
            self.assertRegex(n, r"^\d+\.M\d+P\d+Q\d+\.[^/:]+,S=\d+(:2,.*)?$")
        self.assertEqual(os.listdir(os.path.join(root, "tmp")), [])


class LmtpConfig(unittest.TestCase):
    def test_config_errors(self):
        assert_action_errors(self, [
            ('lmtp { }', "give exactly one of socket"),
            ('lmtp { socket = "/run/x", address = "127.0.0.1:24" }', "give exactly one of socket"),
            ('lmtp { address = "localhost:24" }', 'numeric "ip:port"'),
            ('lmtp { socket = "/run/x", rcpt = "{mailbox}" }', "unknown template variable"),
            ('lmtp { socket = "/run/x", rcpt = "{user}" }', "not a valid address"),
            ('lmtp { socket = "/run/x", timeout = 0 }', "timeout"),
            ('lmtp { socket = "/run/x", port = 24 }', "port"),
        ])


class FakeLmtp:
    """A misbehaving LMTP server on loopback: behave(conn) is called per connection."""

    def __init__(self, behave):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.behave = behave
        self.conns = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self._one, args=(c,), daemon=True).start()

    def _one(self, c):
        try:
            self.behave(c, c.makefile("rb"))
        except OSError:
            pass

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()


def until(f, prefix):
    while True:
        line = f.readline()
        if not line or line.upper().startswith(prefix):
            return line


class LmtpMisbehaviour(unittest.TestCase):
    def run_case(self, behave, expect_log, timeout=""):
        fake = FakeLmtp(behave)
        self.addCleanup(fake.close)
        s = Sluice(rules=lmtp_rules('address = "127.0.0.1:%d",' % fake.port, timeout), tls=False)
        s.start()
        self.addCleanup(s.stop)
        code, text = smtp_error(s, ["user@example.test"])
        self.assertEqual(code, 451, text)
        s.wait_log(expect_log)
        self.assertEqual(s.all_stored(), [])
        return s

    def test_garbage_reply(self):
        def behave(c, f):
            c.sendall(b"220 fake ready\r\n")
            until(f, b"LHLO")
            c.sendall(b"250-fake\r\n250 PIPELINING\r\n")
            until(f, b"MAIL")
            c.sendall(b"hello, I am not an LMTP server\r\n")
            time.sleep(5)
        self.run_case(behave, r'error="[^"]*LMTP 127\.0\.0\.1:\d+: garbage from the server '
                              r'after MAIL FROM: \\?"hello, I am not')

    def test_closed_in_the_middle_of_data(self):
        def behave(c, f):
            c.sendall(b"220 fake ready\r\n")
            until(f, b"LHLO")
            c.sendall(b"250-fake\r\n250 PIPELINING\r\n")
            until(f, b"DATA")
            c.sendall(b"250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go on\r\n")
            f.read(10)
            c.shutdown(socket.SHUT_RDWR)
            c.close()
        self.run_case(behave, r"LMTP 127\.0\.0\.1:\d+: connection closed by the server")

    def test_server_that_stops_answering_times_out(self):
        def behave(c, f):
            c.sendall(b"220 fake ready\r\n")
            until(f, b"LHLO")
            time.sleep(10)
        self.run_case(behave, r"LMTP 127\.0\.0\.1:\d+: timed out waiting for the server after LHLO",
                      timeout="timeout = 1")


if __name__ == "__main__":
    unittest.main()
