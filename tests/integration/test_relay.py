"""The relay action into a second, real sluice instance: the message arrives with the first
hop's trace headers, over STARTTLS when asked; a next hop that is down is retried; a 5xx from
it is final."""
import os
import shutil
import smtplib
import socket
import time
import unittest

from sluice_harness import DEFAULT_RULES, Sluice, free_port, make_cert, read_file, wait_for
from test_config import assert_action_errors


def relay_rules(port, extra=""):
    return """
rule_set "main" {
  rule { name = "forward", actions = {
    add_header { name = "X-Hop", value = "first" },
    relay { to = "127.0.0.1:%d" %s },
  } },
}
""" % (port, extra)


def send(s, rcpt="user@example.test", sender="alice@example.net"):
    with smtplib.SMTP("127.0.0.1", s.port, timeout=10) as c:
        c.sendmail(sender, [rcpt], b"Subject: relayed\r\n\r\n.dot line\r\nover two hops\r\n")


class Relay(unittest.TestCase):
    def test_relay_into_second_instance_over_starttls(self):
        b = Sluice().start()
        self.addCleanup(b.stop)
        a = Sluice(rules=relay_rules(b.port, ', tls = "require"'),
                   server_extra="retry_initial_ms = 100,").start()
        self.addCleanup(a.stop)
        send(a)
        self.assertTrue(wait_for(lambda: b.maildir("example.test", "user")), a.read_log())
        data = read_file(b.maildir("example.test", "user")[0])
        self.assertTrue(data.startswith(b"Return-Path: <alice@example.net>\r\nReceived: "))
        self.assertEqual(data.count(b"Return-Path:"), 1)
        self.assertRegex(data, rb"with ESMTPS \(TLSv1\.[23]")
        # The first hop's headers travel with the message.
        self.assertIn(b"X-Hop: first\r\n", data)
        self.assertEqual(data.count(b"Received: from"), 2)
        self.assertTrue(data.endswith(b"Subject: relayed\r\n\r\n.dot line\r\nover two hops\r\n"), data)
        a.wait_log(r"action=relay attempts=1 outcome=delivered")
        self.assertEqual(a.all_stored(), [])

    def test_next_hop_down_is_retried(self):
        port = free_port()
        a = Sluice(rules=relay_rules(port, ', tls = "none"'),
                   server_extra="retry_initial_ms = 100, retry_max_ms = 200,").start()
        self.addCleanup(a.stop)
        send(a)
        a.wait_log(r"action=relay attempts=1 outcome=retry")
        b = Sluice(tls=False, listen='{ "127.0.0.1:%d" }' % port)
        b.port = port
        b.start()
        self.addCleanup(b.stop)
        self.assertTrue(wait_for(lambda: b.maildir("example.test", "user")), a.read_log())
        a.wait_log(r"action=relay attempts=\d+ outcome=delivered")

    def test_5xx_from_next_hop_is_final(self):
        b = Sluice().start()  # accepts example.test only
        self.addCleanup(b.stop)
        a = Sluice(rules=relay_rules(b.port, ', tls = "none"'), domains=("example.test",
                                                                         "other.test"),
                   server_extra="retry_initial_ms = 100,").start()
        self.addCleanup(a.stop)
        send(a, rcpt="user@other.test")
        a.wait_log(r"action=relay attempts=1 outcome=rejected error=\"RCPT TO: 550 ")
        time.sleep(0.5)
        self.assertNotIn("attempts=2", a.read_log())

    def test_mail_from_replace(self):
        b = Sluice(tls=False).start()
        self.addCleanup(b.stop)
        a = Sluice(rules=relay_rules(b.port, ', tls = "none", mail_from = "replace", '
                                     'sender = "relay@example.test"')).start()
        self.addCleanup(a.stop)
        send(a)
        self.assertTrue(wait_for(lambda: b.maildir("example.test", "user")))
        data = read_file(b.maildir("example.test", "user")[0])
        self.assertTrue(data.startswith(b"Return-Path: <relay@example.test>"))

    def localhost_peer(self):
        """A next hop whose certificate is for "localhost" (made before it starts)."""
        b = Sluice()
        tls = os.path.join(b.dir, "var", "tls")
        shutil.rmtree(tls)
        cert, _key = make_cert(tls, cn="localhost")
        b.start()
        self.addCleanup(b.stop)
        return b, cert

    def first_hop(self, to, extra):
        a = Sluice(rules=relay_rules(0, "").replace('"127.0.0.1:0" ', '"%s" %s' % (to, extra)),
                   server_extra="retry_initial_ms = 100, retry_max_ms = 200,")
        with open(a.config_path) as f:
            text = f.read()
        a.write_config(text.replace('hostname = "mx.example.test"',
                                    'hostname = "relay-a.example.test"'))
        a.start()
        self.addCleanup(a.stop)
        return a

    def test_verify_delivers_to_a_trusted_certificate_and_ehlo_says_our_hostname(self):
        b, cert = self.localhost_peer()
        a = self.first_hop("localhost:%d" % b.port, ', tls = "verify", tls_ca = "%s"' % cert)
        send(a)
        self.assertTrue(wait_for(lambda: b.maildir("example.test", "user")), a.read_log())
        a.wait_log(r"smtp: to localhost:%d: TLS, certificate verified" % b.port)
        a.wait_log(r"action=relay attempts=1 outcome=delivered")
        data = read_file(b.maildir("example.test", "user")[0]).decode()
        # The next hop's Received names the HELO it got: the config's hostname, not the box's.
        self.assertIn("Received: from relay-a.example.test (", data)
        if socket.gethostname() != "relay-a.example.test":
            self.assertNotIn("Received: from %s " % socket.gethostname(), data)

    def test_verify_refuses_an_untrusted_certificate(self):
        b, _cert = self.localhost_peer()
        other, _ = make_cert(os.path.join(b.dir, "other-ca"), cn="localhost")
        a = self.first_hop("localhost:%d" % b.port, ', tls = "verify", tls_ca = "%s"' % other)
        send(a)
        a.wait_log(r'action=relay attempts=1 outcome=retry error="STARTTLS: certificate verify '
                   r'failed for localhost: [^"]+ \(tls = \\"verify\\"\)"')
        time.sleep(0.3)
        self.assertEqual(b.maildir("example.test", "user"), [])

    def test_verify_refuses_a_name_mismatch(self):
        b, cert = self.localhost_peer()
        a = self.first_hop("127.0.0.1:%d" % b.port, ', tls = "verify", tls_ca = "%s"' % cert)
        send(a)
        a.wait_log(r'outcome=retry error="STARTTLS: certificate verify failed for 127\.0\.0\.1: '
                   r'IP address mismatch')
        self.assertEqual(b.maildir("example.test", "user"), [])

    def test_verify_refuses_a_next_hop_without_starttls(self):
        b = Sluice(tls=False).start()
        self.addCleanup(b.stop)
        a = self.first_hop("localhost:%d" % b.port, ', tls = "verify"')
        send(a)
        a.wait_log(r'outcome=retry error="localhost:%d does not offer STARTTLS and tls = '
                   r'\\"verify\\""' % b.port)

    def test_the_log_says_which_tls_it_had(self):
        b, _cert = self.localhost_peer()
        a = self.first_hop("localhost:%d" % b.port, "")
        send(a)
        a.wait_log(r"smtp: to localhost:%d: TLS, certificate not verified" % b.port)
        plain = Sluice(tls=False).start()
        self.addCleanup(plain.stop)
        a2 = self.first_hop("127.0.0.1:%d" % plain.port, "")
        send(a2)
        a2.wait_log(r"smtp: to 127\.0\.0\.1:%d: no TLS \(not offered\)" % plain.port)
        self.assertTrue(wait_for(lambda: plain.maildir("example.test", "user")))

    def test_config_errors(self):
        assert_action_errors(self, (
            ('relay { to = "nohost" }', 'to must be "host:port"'),
            ('relay { to = "h:25", tls = "maybe" }',
             'tls must be "none", "opportunistic", "require" or "verify"'),
            ('relay { to = "h:25", tls_ca = "/etc/hostname" }',
             'tls_ca is only used with tls = "verify"'),
            ('relay { to = "h:25", tls = "verify", tls_ca = "/nonexistent/ca.pem" }',
             "tls_ca '/nonexistent/ca.pem' cannot be read: No such file or directory"),
            ('relay { to = "h:25", mail_from = "replace" }', "needs sender"),
            ('relay { to = "h:25", hop = 1 }', "unknown key 'hop'")))


if __name__ == "__main__":
    unittest.main()
