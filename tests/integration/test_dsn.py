"""Partial bounces: when rules refuse some recipients after others were accepted, an RFC 3464
DSN goes to an authenticated sender through bounce_relay (here a second, real sluice), from
<>; never to the null sender or an unauthenticated one (no backscatter)."""
import email
import email.policy
import smtplib
import socket
import time
import unittest

from auth_fixtures import ZonesTestCase
from dns_harness import DnsServer, txt
from sluice_harness import Sluice, read_file, wait_for

RULES = """
dns { servers = { "127.0.0.1:%d" }, timeout_ms = 2000 }
rule_set "main" {
  rule { name = "no-bob", recipients = { "bob@example.test" },
         actions = { bounce { message = "Bob does not want this" } } },
  rule { name = "store", actions = { store { maildir = "var/mail/{domain}/{user}" } } },
}
"""


class Dsn(ZonesTestCase):
    def setUp(self):
        self.sink = Sluice(domains=("example.com", "spf-fail.example.com"), rules="""
rule_set "main" { rule { name = "all", actions = { store { maildir = "var/mail/{domain}/{user}" } } } }
""").start()
        self.addCleanup(self.sink.stop)
        self.s = Sluice(rules=RULES % self.dns.port,
                        server_extra='auth_checks = true, bounce_relay = "127.0.0.1:%d",'
                                     ' retry_initial_ms = 100,' % self.sink.port).start()
        self.addCleanup(self.s.stop)

    def send(self, sender):
        with smtplib.SMTP("127.0.0.1", self.s.port, timeout=20) as c:
            c.ehlo("client.example.net")
            c.mail(sender)
            c.rcpt("alice@example.test")
            c.rcpt("bob@example.test")
            return c.data(b"From: x@example.com\r\nSubject: partial\r\n\r\nhello\r\n")

    def test_dsn_to_authenticated_sender(self):
        self.assertEqual(self.send("bounce@example.com")[0], 250)
        self.assertEqual(len(self.s.maildir("example.test", "alice")), 1)
        self.assertEqual(self.s.maildir("example.test", "bob"), [])
        self.assertTrue(wait_for(lambda: self.sink.maildir("example.com", "bounce")),
                        self.s.read_log())
        data = read_file(self.sink.maildir("example.com", "bounce")[0])
        self.assertTrue(data.startswith(b"Return-Path: <>\r\n"))
        msg = email.message_from_bytes(data, policy=email.policy.default)
        self.assertEqual(msg.get_content_type(), "multipart/report")
        self.assertEqual(msg.get_param("report-type"), "delivery-status")
        self.assertEqual(msg["Auto-Submitted"], "auto-replied")
        parts = list(msg.iter_parts())
        self.assertEqual([p.get_content_type() for p in parts],
                         ["text/plain", "message/delivery-status", "text/rfc822-headers"])
        status = parts[1].as_string()
        self.assertIn("Final-Recipient: rfc822; bob@example.test", status)
        self.assertIn("Status: 5.7.1", status)
        self.assertIn("Diagnostic-Code: smtp; 550 5.7.1 Bob does not want this", status)
        self.assertNotIn("alice", status)
        self.assertIn("Subject: partial", parts[2].get_content())
        self.s.wait_log(r"action=dsn attempts=1 outcome=delivered")

    def test_no_dsn_for_unauthenticated_or_null_sender(self):
        self.assertEqual(self.send("x@spf-fail.example.com")[0], 250)
        self.s.wait_log(r"rcpt=bob@example.test .*dsn=\"not sent: sender not authenticated")
        self.assertEqual(self.send("")[0], 250)
        self.s.wait_log(r"rcpt=bob@example.test .*dsn=\"not sent: null sender\"")
        time.sleep(0.3)
        self.assertEqual(self.sink.all_stored(), [])


MX_ZONES = {"example.org": [("@", "TXT", txt("v=spf1 ip4:127.0.0.1 -all")),
                            ("@", "MX", "10 mx.example.org."), ("mx", "A", "127.0.0.2")]}


class DsnViaMx(unittest.TestCase):
    """Without bounce_relay the DSN goes to the sender domain's MX, found through the DNS
    layer: here a second sluice on 127.0.0.2:25 (port 25 needs root)."""

    def setUp(self):
        try:
            probe = socket.socket()
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(("127.0.0.2", 25))
            probe.close()
        except OSError as e:
            self.skipTest("cannot listen on 127.0.0.2:25 here: %s" % e)
        self.dns = DnsServer(MX_ZONES).start()
        self.addCleanup(self.dns.stop)
        self.sink = Sluice(domains=("example.org",), listen='{ "127.0.0.2:25" }', rules="""
rule_set "main" { rule { name = "all", actions = { store { maildir = "var/mail/{domain}/{user}" } } } }
""")
        self.sink.start()
        self.addCleanup(self.sink.stop)
        self.s = Sluice(rules=RULES % self.dns.port,
                        server_extra="auth_checks = true, retry_initial_ms = 100,").start()
        self.addCleanup(self.s.stop)

    def test_dsn_to_the_sender_domains_mx(self):
        with smtplib.SMTP("127.0.0.1", self.s.port, timeout=20) as c:
            c.sendmail("bounce@example.org", ["alice@example.test", "bob@example.test"],
                       b"From: x@example.org\r\nSubject: partial\r\n\r\nhello\r\n")
        self.assertTrue(wait_for(lambda: self.sink.maildir("example.org", "bounce")),
                        self.s.read_log())
        data = read_file(self.sink.maildir("example.org", "bounce")[0])
        self.assertIn(b"Final-Recipient: rfc822; bob@example.test", data)
        self.s.wait_log(r"action=dsn attempts=1 outcome=delivered")


if __name__ == "__main__":
    unittest.main()
