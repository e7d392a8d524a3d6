"""End-to-end delivery through real clients: smtplib (plain, STARTTLS), swaks and raw bytes.
Stored files are checked byte for byte."""
import re
import smtplib
import ssl
import subprocess
import unittest

from sluice_harness import SluiceTestCase, read_file, strip_trace


class Delivery(SluiceTestCase):
    domains = ("example.test", ".example.test")

    def test_smtplib_plain_delivers_to_maildir(self):
        msg = b"From: a@example.net\r\nTo: user@example.test\r\nSubject: hi\r\n\r\nHello.\r\n"
        with smtplib.SMTP("127.0.0.1", self.sluice.port, timeout=10) as s:
            s.ehlo("client.example.net")
            refused = s.sendmail("a@example.net", ["user@example.test"], msg)
            self.assertEqual(refused, {})
        files = self.sluice.maildir("example.test", "user")
        self.assertEqual(len(files), 1)
        data = read_file(files[0])
        self.assertEqual(strip_trace(data), msg)
        self.assertTrue(data.startswith(b"Return-Path: <a@example.net>\r\nReceived: from "
                                        b"client.example.net (unknown [127.0.0.1])\r\n"))
        self.assertIn(b"\r\n\tby mx.example.test (sluice) with ESMTP\r\n", data)
        self.assertRegex(data, rb"\tfor <user@example\.test>; \w{3}, \d\d \w{3} \d{4} ")
        self.assertIn(b"\r\nX-Sluice-Rule: store-all\r\nFrom: a@example.net", data)
        self.assertEqual(self.sluice.maildir("example.test", "user", "tmp"), [])

    def test_starttls_with_smtplib(self):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        msg = b"Subject: tls\r\n\r\nover TLS\r\n"
        with smtplib.SMTP("127.0.0.1", self.sluice.port, timeout=10) as s:
            s.ehlo("client.example.net")
            self.assertTrue(s.has_extn("starttls"))
            s.starttls(context=ctx)
            s.ehlo("client.example.net")
            self.assertFalse(s.has_extn("starttls"))
            s.sendmail("a@example.net", ["user@example.test"], msg)
        data = read_file(self.sluice.maildir("example.test", "user")[0])
        self.assertRegex(data, rb"with ESMTPS \(TLSv1\.[23]:[A-Z0-9_-]+\)")
        self.assertTrue(data.endswith(msg))

    def test_swaks(self):
        r = subprocess.run(["swaks", "--server", "127.0.0.1:%d" % self.sluice.port,
                            "--to", "user@example.test", "--from", "a@example.net",
                            "--helo", "swaks.example.net"], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("250 2.0.0 Ok: queued as", r.stdout)
        self.assertEqual(len(self.sluice.maildir("example.test", "user")), 1)
        # One log line per message: queue id, client, helo, envelope, size, rules, actions.
        self.sluice.wait_log(r"message qid=\w+ client=127\.0\.0\.1 helo=swaks\.example\.net "
                             r"from=a@example\.net to=user@example\.test size=\d+ rules=store-all "
                             r"actions=store-all/add_header:ok:[\d.]+ms,store-all/store:ok:[\d.]+ms "
                             r"result=\"250 2\.0\.0 Ok")
        self.sluice.wait_log(r"session client=127\.0\.0\.1 helo=swaks\.example\.net messages=1 "
                             r"rcpt_accepted=1 rcpt_rejected=0 duration=\d+s end=quit")

    def test_swaks_starttls(self):
        r = subprocess.run(["swaks", "--server", "127.0.0.1:%d" % self.sluice.port,
                            "--to", "user@example.test", "--from", "a@example.net", "-tls"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("TLS started", r.stdout)
        self.assertIn(b"with ESMTPS", read_file(self.sluice.maildir("example.test", "user")[0]))

    def test_dot_unstuffing_8bit_and_crlf_preserved(self):
        c = self.session()
        c.expect(250, "MAIL FROM:<a@example.net> BODY=8BITMIME\r\n")
        c.expect(250, "RCPT TO:<user@example.test>\r\n")
        c.expect(354, "DATA\r\n")
        wire = (b"Subject: dots\r\n\r\n..leading dot\r\n.\tdot-tab\r\n...\r\n"
                b"caf\xc3\xa9 \xff\xfe bytes\r\n\r\nlast line\r\n.\r\n")
        c.send(wire)
        c.expect(250)
        c.expect(221, "QUIT\r\n")
        data = read_file(self.sluice.maildir("example.test", "user")[0])
        self.assertEqual(strip_trace(data),
                         b"Subject: dots\r\n\r\n.leading dot\r\n\tdot-tab\r\n..\r\n"
                         b"caf\xc3\xa9 \xff\xfe bytes\r\n\r\nlast line\r\n")

    def test_one_copy_per_recipient_and_plus_label(self):
        c = self.session()
        c.expect(250, "MAIL FROM:<>\r\n")
        c.expect(250, "RCPT TO:<user@example.test>\r\n")
        c.expect(250, "RCPT TO:<User+news@Example.TEST>\r\n")
        c.expect(250, "RCPT TO:<other@sub.example.test>\r\n")
        c.expect(250, "RCPT TO:<user@example.test>\r\n")  # duplicate: accepted once
        c.expect(354, "DATA\r\n")
        c.send(b"Subject: x\r\n\r\nbody\r\n.\r\n")
        c.expect(250)
        self.assertEqual(len(self.sluice.maildir("example.test", "user")), 2)
        self.assertEqual(len(self.sluice.maildir("sub.example.test", "other")), 1)
        copies = [read_file(f) for f in self.sluice.maildir("example.test", "user")]
        fors = sorted(re.search(rb"for <([^>]+)>", d).group(1) for d in copies)
        self.assertEqual(fors, [b"User+news@Example.TEST", b"user@example.test"])
        self.assertTrue(all(d.startswith(b"Return-Path: <>\r\n") for d in copies))


class Replies(SluiceTestCase):
    def test_banner_and_ehlo_keywords(self):
        c = self.sluice.raw()
        self.assertIn("220 mx.example.test ESMTP", c.expect(220))
        text = c.expect(250, "EHLO client.example.net\r\n")
        for kw in ("PIPELINING", "8BITMIME", "SIZE ", "ENHANCEDSTATUSCODES", "STARTTLS"):
            self.assertIn(kw, text)
        self.assertIn("250 mx.example.test", c.expect(250, "HELO client.example.net\r\n"))

    def test_simple_commands(self):
        c = self.session()
        self.assertIn("252 2.0.0", c.expect(252, "VRFY user\r\n"))
        self.assertIn("502 5.5.1", c.expect(502, "EXPN list\r\n"))
        self.assertIn("214 2.0.0", c.expect(214, "HELP\r\n"))
        self.assertIn("250 2.0.0", c.expect(250, "NOOP\r\n"))
        self.assertIn("250 2.0.0", c.expect(250, "RSET\r\n"))
        self.assertIn("500 5.5.2", c.expect(500, "FROB\r\n"))
        self.assertIn("221 2.0.0", c.expect(221, "QUIT\r\n"))
        self.assertTrue(c.closed())

    def test_sequence_errors(self):
        c = self.sluice.raw()
        c.expect(220)
        self.assertIn("503 5.5.1", c.expect(503, "MAIL FROM:<a@example.net>\r\n"))
        c.expect(250, "EHLO x.example.net\r\n")
        self.assertIn("503 5.5.1", c.expect(503, "RCPT TO:<user@example.test>\r\n"))
        self.assertIn("503 5.5.1", c.expect(503, "DATA\r\n"))
        c.expect(250, "MAIL FROM:<a@example.net>\r\n")
        self.assertIn("503 5.5.1", c.expect(503, "MAIL FROM:<a@example.net>\r\n"))
        self.assertIn("554 5.5.1", c.expect(554, "DATA\r\n"))

    def test_syntax_errors(self):
        c = self.session()
        self.assertIn("501 5.5.4", c.expect(501, "MAIL TO:<a@example.net>\r\n"))
        self.assertIn("501 5.1.7", c.expect(501, "MAIL FROM:a@example.net\r\n"))
        self.assertIn("553 5.1.7", c.expect(553, "MAIL FROM:<not an address>\r\n"))
        self.assertIn("555 5.5.4", c.expect(555, "MAIL FROM:<a@example.net> FOO=BAR\r\n"))
        self.assertIn("501 5.5.4", c.expect(501, "MAIL FROM:<a@example.net> SIZE=abc\r\n"))
        self.assertIn("501 5.5.4", c.expect(501, "EHLO\r\n"))
        self.assertIn("501 5.5.4", c.expect(501, "DATA now\r\n"))
        c.expect(250, "MAIL FROM:<a@example.net>\r\n")
        self.assertIn("501 5.1.3", c.expect(501, "RCPT TO:<>\r\n"))
        self.assertIn("501 5.1.3", c.expect(501, "RCPT TO:<@@example.test>\r\n"))
        self.assertIn("553 5.1.3", c.expect(553, "RCPT TO:<a..b@example.test>\r\n"))

    def test_recipient_refusals(self):
        c = self.session()
        c.expect(250, "MAIL FROM:<a@example.net>\r\n")
        self.assertIn("550 5.7.1", c.expect(550, "RCPT TO:<user@elsewhere.example>\r\n"))
        # Subdomains are not accepted unless listed as ".example.test".
        self.assertIn("550 5.7.1", c.expect(550, "RCPT TO:<user@sub.example.test>\r\n"))
        self.assertIn("550 5.7.1", c.expect(550, "RCPT TO:<user@notexample.test>\r\n"))

    def test_size_limits(self):
        c = self.session()
        self.assertIn("552 5.3.4", c.expect(552, "MAIL FROM:<a@example.net> SIZE=999999999999\r\n"))
        c.expect(250, "MAIL FROM:<a@example.net> SIZE=1000\r\n")


class TooBig(SluiceTestCase):
    server_extra = "max_message_size = 4096,"

    def test_oversized_message_refused_with_552(self):
        c = self.session()
        c.expect(250, "MAIL FROM:<a@example.net>\r\n")
        c.expect(250, "RCPT TO:<user@example.test>\r\n")
        c.expect(354, "DATA\r\n")
        c.send(b"Subject: big\r\n\r\n" + (b"x" * 70 + b"\r\n") * 200 + b".\r\n")
        self.assertIn("552 5.3.4", c.expect(552))
        # The session goes on and a normal message still gets through.
        c.expect(250, "MAIL FROM:<a@example.net>\r\n")
        c.expect(250, "RCPT TO:<user@example.test>\r\n")
        c.expect(354, "DATA\r\n")
        c.expect(250, "Subject: small\r\n\r\nok\r\n.\r\n")
        self.assertEqual(len(self.sluice.maildir("example.test", "user")), 1)


class Recipients(SluiceTestCase):
    domains = ("example.test", ".example.test", "other.test")
    rules = """
rule_set "main" {
  rule { name = "alice", recipients = { "alice@example.test" },
         actions = { store { maildir = "var/mail/{domain}/{user}" } } },
  rule { name = "subs", recipients = { ".example.test" },
         actions = { store { maildir = "var/mail/{domain}/{local}" } } },
}
"""

    def test_unknown_user_gets_550_5_1_1(self):
        c = self.session()
        c.expect(250, "MAIL FROM:<a@example.net>\r\n")
        self.assertIn("550 5.1.1", c.expect(550, "RCPT TO:<bob@example.test>\r\n"))
        self.assertIn("550 5.1.1", c.expect(550, "RCPT TO:<x@other.test>\r\n"))
        c.expect(250, "RCPT TO:<alice+tag@example.test>\r\n")
        c.expect(250, "RCPT TO:<bob+x@deep.sub.example.test>\r\n")
        c.expect(354, "DATA\r\n")
        c.expect(250, "Subject: s\r\n\r\nb\r\n.\r\n")
        self.assertEqual(len(self.sluice.maildir("example.test", "alice")), 1)
        self.assertEqual(len(self.sluice.maildir("deep.sub.example.test", "bob+x")), 1)


class PathTraversal(SluiceTestCase):
    rules = """
rule_set "main" {
  rule { name = "all", actions = { store { maildir = "var/mail/{domain}/{local}" } } },
}
"""

    def test_unsafe_local_parts_refused(self):
        c = self.session()
        c.expect(250, "MAIL FROM:<a@example.net>\r\n")
        for local in ('"../../etc"', '".hidden"', '"a/b"', '".."', '"x\\\\/y"',
                      '"..\\/.."'):
            text = c.expect(550, "RCPT TO:<%s@example.test>\r\n" % local)
            self.assertIn("550 5.1.3", text)
        # Control characters never get past the address syntax check.
        self.assertIn("553 5.1.3", c.expect(553, 'RCPT TO:<"tab\\\tx"@example.test>\r\n'))
        c.expect(250, "RCPT TO:<fine@example.test>\r\n")
        c.expect(354, "DATA\r\n")
        c.expect(250, "Subject: s\r\n\r\nb\r\n.\r\n")
        stored = self.sluice.all_stored()
        self.assertEqual(len(stored), 1)
        self.assertIn("/var/mail/example.test/fine/new/", stored[0])


class Pipelining(SluiceTestCase):
    def test_whole_transaction_in_one_write(self):
        c = self.sluice.raw()
        c.expect(220)
        c.send(b"EHLO p.example.net\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<user@example.test>\r\n"
               b"RCPT TO:<nobody@elsewhere.example>\r\nRCPT TO:<user2@example.test>\r\nDATA\r\n")
        codes = [c.reply()[0] for _ in range(6)]
        self.assertEqual(codes, [250, 250, 250, 550, 250, 354])
        c.send(b"Subject: p\r\n\r\npipelined\r\n.\r\nMAIL FROM:<b@example.net>\r\n"
               b"RCPT TO:<user@example.test>\r\nDATA\r\nSubject: q\r\n\r\nsecond\r\n.\r\nQUIT\r\n")
        codes = [c.reply()[0] for _ in range(6)]
        self.assertEqual(codes, [250, 250, 250, 354, 250, 221])
        self.assertEqual(len(self.sluice.maildir("example.test", "user")), 2)
        self.assertEqual(len(self.sluice.maildir("example.test", "user2")), 1)


if __name__ == "__main__":
    unittest.main()
