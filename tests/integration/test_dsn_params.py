"""RFC 3461 DSN parameters through real SMTP: MAIL RET/ENVID and RCPT NOTIFY/ORCPT are
validated (501 5.5.4), honoured in the DSNs sluice sends for partial refusals (no DSN when
NOTIFY excludes FAILURE; headers or the whole message as RET asks; Original-Envelope-Id and
Original-Recipient in the report), and passed on by the relay action to a next hop that offers
DSN (and left out for one that does not)."""
import email
import email.policy
import smtplib
import socket
import threading
import unittest

from auth_fixtures import ZonesTestCase
from sluice_harness import Sluice, free_port, read_file, wait_for

RULES = """
dns { servers = { "127.0.0.1:%d" }, timeout_ms = 2000 }
rule_set "main" {
  rule { name = "no-bob", recipients = { "bob@example.test" },
         actions = { bounce { message = "Bob does not want this" } } },
  rule { name = "store", actions = { store { maildir = "var/mail/{domain}/{user}" } } },
}
"""

BODY = b"From: x@example.com\r\nSubject: %s\r\n\r\nthe body text\r\n"


class DsnParams(ZonesTestCase):
    def setUp(self):
        self.sink = Sluice(domains=("example.com",), tls=False, rules="""
rule_set "main" { rule { name = "all", actions = { store { maildir = "var/mail/{domain}/{user}" } } } }
""").start()
        self.addCleanup(self.sink.stop)
        self.s = Sluice(rules=RULES % self.dns.port, tls=False,
                        server_extra='auth_checks = true, bounce_relay = "127.0.0.1:%d",'
                                     ' retry_initial_ms = 100,' % self.sink.port).start()
        self.addCleanup(self.s.stop)

    def send(self, subject, mail_options=(), bob_options=()):
        with smtplib.SMTP("127.0.0.1", self.s.port, timeout=20) as c:
            c.ehlo("client.example.net")
            self.assertTrue(c.has_extn("dsn"))
            c.mail("bounce@example.com", list(mail_options))
            c.rcpt("alice@example.test")
            c.rcpt("bob@example.test", list(bob_options))
            return c.data(BODY % subject.encode())

    def dsns(self):
        return self.sink.maildir("example.com", "bounce")

    def parts(self, path):
        msg = email.message_from_bytes(read_file(path), policy=email.policy.default)
        self.assertEqual(msg.get_content_type(), "multipart/report")
        return list(msg.iter_parts())

    def test_bad_values_are_501(self):
        c = self.s.raw()
        c.expect(220)
        c.expect(250, "EHLO client.example.net\r\n")
        for bad in ("RET=BODY", "ENVID=a+zz", "ENVID=x+0D+0AInjected:+20yes", "RET=FULL RET=HDRS", "NOTIFY=NEVER"):
            c.send("MAIL FROM:<a@example.net> %s\r\n" % bad)
            code, text = c.reply()
            self.assertIn(code, (501, 555), text)
        c.expect(250, "MAIL FROM:<a@example.net> RET=HDRS ENVID=x+2By\r\n")
        for bad in ("NOTIFY=NEVER,FAILURE", "NOTIFY=SOMETIMES", "NOTIFY=", "ORCPT=nosemicolon",
                    "ORCPT=rfc822;a+zz", "ORCPT=rfc822;a+0D+0Ab@example.org"):
            self.assertIn("501 5.5.4", c.expect(501, "RCPT TO:<user@example.test> %s\r\n" % bad))
        c.expect(250, "RCPT TO:<user@example.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;u+40x\r\n")

    def test_notify_never_and_notify_delay_send_no_dsn(self):
        self.assertEqual(self.send("never", bob_options=["NOTIFY=NEVER"])[0], 250)
        self.s.wait_log(r"rcpt=bob@example.test .*dsn=\"not sent: the client's NOTIFY excludes")
        self.assertEqual(self.send("delay", bob_options=["NOTIFY=DELAY"])[0], 250)
        self.s.wait_log(r"rcpt=bob@example.test .*dsn=\"not sent: the client's NOTIFY excludes"
                        r" FAILURE\"", start=0)
        # A third message with the default NOTIFY gets its DSN: the only one that arrives.
        self.assertEqual(self.send("default")[0], 250)
        self.assertTrue(wait_for(self.dsns), self.s.read_log())
        self.s.wait_log(r"action=dsn attempts=1 outcome=delivered")
        self.assertEqual(len(self.dsns()), 1)
        headers = self.parts(self.dsns()[0])[2].get_content()
        self.assertIn("Subject: default", headers)

    def test_notify_failure_ret_hdrs_envid_orcpt(self):
        self.assertEqual(self.send("hdrs", mail_options=["RET=HDRS", "ENVID=QQ314159+2Bx"],
                                   bob_options=["NOTIFY=FAILURE",
                                                "ORCPT=rfc822;Bob+2Bold+40example.org"])[0], 250)
        self.assertTrue(wait_for(self.dsns), self.s.read_log())
        parts = self.parts(self.dsns()[0])
        self.assertEqual([p.get_content_type() for p in parts],
                         ["text/plain", "message/delivery-status", "text/rfc822-headers"])
        status = parts[1].as_string()
        self.assertIn("Original-Envelope-Id: QQ314159+x", status)
        self.assertIn("Original-Recipient: rfc822; Bob+old@example.org", status)
        self.assertIn("Final-Recipient: rfc822; bob@example.test", status)
        returned = parts[2].get_content()
        self.assertIn("Subject: hdrs", returned)
        self.assertNotIn("the body text", returned)

    def test_ret_full_returns_the_whole_message(self):
        self.assertEqual(self.send("full", mail_options=["RET=FULL"])[0], 250)
        self.assertTrue(wait_for(self.dsns), self.s.read_log())
        data = read_file(self.dsns()[0])
        parts = self.parts(self.dsns()[0])
        self.assertEqual(parts[2].get_content_type(), "message/rfc822")
        self.assertIn(b"Subject: full", data)
        self.assertIn(b"the body text", data)
        self.assertNotIn(b"Original-Envelope-Id", data)

    def test_smtputf8_message_gets_global_types(self):
        with smtplib.SMTP("127.0.0.1", self.s.port, timeout=20) as c:
            c.ehlo("client.example.net")
            c.mail("bounce@example.com", ["SMTPUTF8"])
            c.rcpt("alice@example.test")
            c.rcpt("bob@example.test", ["ORCPT=rfc822;b@example.org"])
            self.assertEqual(c.data("Subject: Grüße\r\n\r\nthe body text\r\n".encode())[0], 250)
        self.assertTrue(wait_for(self.dsns), self.s.read_log())
        parts = self.parts(self.dsns()[0])
        self.assertEqual([p.get_content_type() for p in parts],
                         ["text/plain", "message/global-delivery-status", "message/global-headers"])
        data = read_file(self.dsns()[0])
        self.assertIn("Subject: Grüße".encode(), data)
        self.assertNotIn(b"the body text", data)


class Capture:
    """A minimal next hop on loopback: offers DSN (or not), records the envelope commands and
    accepts every message."""

    def __init__(self, offer_dsn, offer_utf8=False):
        self.offer_dsn, self.offer_utf8 = offer_dsn, offer_utf8
        self.lines = []
        self.done = threading.Event()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        conn, _ = self.sock.accept()
        f = conn.makefile("rb")
        conn.sendall(b"220 capture ESMTP\r\n")
        in_data = False
        for raw in f:
            line = raw.rstrip(b"\r\n").decode("utf-8", "replace")
            if in_data:
                if line == ".":
                    in_data = False
                    conn.sendall(b"250 ok\r\n")
                continue
            verb = line[:4].upper()
            if verb == "EHLO":
                conn.sendall(b"250-capture\r\n" + (b"250-DSN\r\n" if self.offer_dsn else b"") +
                             (b"250-SMTPUTF8\r\n" if self.offer_utf8 else b"") +
                             b"250 8BITMIME\r\n")
            elif verb in ("MAIL", "RCPT"):
                self.lines.append(line)
                conn.sendall(b"250 ok\r\n")
            elif verb == "DATA":
                in_data = True
                conn.sendall(b"354 go\r\n")
            elif verb == "QUIT":
                conn.sendall(b"221 bye\r\n")
                break
            else:
                conn.sendall(b"250 ok\r\n")
        conn.close()
        self.done.set()

    def close(self):
        self.sock.close()


class RelayPassesDsn(unittest.TestCase):
    def relay_sluice(self, hop):
        return Sluice(tls=False, rules="""
rule_set "main" { rule { name = "relay", actions = {
  relay { to = "127.0.0.1:%d", tls = "none" } } } }
""" % hop.port).start()

    def relay_through(self, offer_dsn):
        hop = Capture(offer_dsn)
        self.addCleanup(hop.close)
        s = self.relay_sluice(hop)
        self.addCleanup(s.stop)
        with smtplib.SMTP("127.0.0.1", s.port, timeout=20) as c:
            c.ehlo("client.example.net")
            c.mail("a@example.net", ["RET=HDRS", "ENVID=id+2B1"])
            c.rcpt("user@example.test", ["NOTIFY=SUCCESS,DELAY", "ORCPT=rfc822;old+40example.org"])
            c.rcpt("other@example.test")
            self.assertEqual(c.data(b"Subject: relayed\r\n\r\nx\r\n")[0], 250)
        self.assertTrue(hop.done.wait(20), s.read_log())
        return hop.lines

    def test_parameters_reach_a_hop_that_offers_dsn(self):
        lines = self.relay_through(True)
        self.assertEqual(lines, ["MAIL FROM:<a@example.net> RET=HDRS ENVID=id+2B1",
                                 # re-encoded as minimal xtext: '@' needs no escape
                                 "RCPT TO:<user@example.test> NOTIFY=SUCCESS,DELAY"
                                 " ORCPT=rfc822;old@example.org",
                                 "RCPT TO:<other@example.test>"])

    def test_parameters_left_out_for_a_hop_without_dsn(self):
        lines = self.relay_through(False)
        self.assertEqual(lines, ["MAIL FROM:<a@example.net>", "RCPT TO:<user@example.test>",
                                 "RCPT TO:<other@example.test>"])

    def test_smtputf8_needs_a_hop_that_offers_it(self):
        for offer in (True, False):
            hop = Capture(False, offer_utf8=offer)
            self.addCleanup(hop.close)
            s = self.relay_sluice(hop)
            self.addCleanup(s.stop)
            with smtplib.SMTP("127.0.0.1", s.port, timeout=20) as c:
                c.sendmail("jörg@example.net", ["用户@example.test"], "Subject: ü\r\n\r\nx\r\n".encode(),
                           mail_options=["SMTPUTF8"])
            if offer:
                self.assertTrue(hop.done.wait(20), s.read_log())
                self.assertEqual(hop.lines, ["MAIL FROM:<jörg@example.net> SMTPUTF8",
                                             "RCPT TO:<用户@example.test>"])
            else:
                # RFC 6531 §3.2: no downgrade; a permanent failure, and nothing sent.
                s.wait_log(r"action=relay attempts=1 outcome=rejected error=\"MAIL FROM: 553"
                           r" 5\.6\.7 the next hop does not offer SMTPUTF8")
                self.assertEqual(hop.lines, [])


if __name__ == "__main__":
    unittest.main()
