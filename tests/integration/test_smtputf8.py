"""SMTPUTF8 (RFC 6531) through real SMTP sessions: advertised; UTF-8 senders and recipients
accepted only with the SMTPUTF8 parameter and only as well-formed UTF-8; stored in Maildirs
named by the UTF-8 user, matched by rules (recipient, sender, From, subject), seen by Lua; the
Received header says UTF8SMTP."""
import json
import os
import re
import smtplib
import subprocess
import unittest

from sluice_harness import BIN, Sluice, read_file, wait_for

GREEK = "δοκιμή"
CHINESE = "用户"

RULES = """
rule_set "main" {
  rule { name = "greek-subject", when = { subject = { contains = "Καλημέρα" } },
         actions = { add_header { name = "X-Greek-Subject", value = "yes" } } },
  rule { name = "jorg", when = { sender = "jörg@exämple.net" },
         actions = { add_header { name = "X-Sender-Jorg", value = "yes" } } },
  rule { name = "jorg-from", when = { from = "exämple.net" },
         actions = { add_header { name = "X-From-Jorg", value = "yes" } } },
  rule { name = "chinese", recipients = { "用户@example.test" },
         actions = { store { maildir = "var/mail/matched/{user}" } } },
  rule { name = "lua", recipients = { "lua@example.test" },
         actions = { lua { script = "see.lua" }, store { maildir = "var/mail/{domain}/{user}" } } },
  rule { name = "store", recipients = { "example.test" },
         actions = { store { maildir = "var/mail/{domain}/{user}" } } },
}
"""

SCRIPT = r"""
function handler(event, msg)
  local mail = event.Records[1].ses.mail
  local r = { source = mail.source, subject = msg:subject(), env = msg.envelope }
  -- Hex, so the header stays ASCII whatever the JSON encoder does with UTF-8.
  local j = sluice.json.encode(r):gsub(".", function(c) return string.format("%02x", c:byte()) end)
  return { add_headers = { { name = "X-Seen", value = j } } }
end
"""

MSG = ("From: Jörg <jörg@exämple.net>\r\nTo: δοκιμή@example.test\r\n"
       "Subject: Καλημέρα κόσμε\r\n\r\nΓειά σου, 用户\r\n").encode()


class Utf8(unittest.TestCase):
    def setUp(self):
        self.s = Sluice(rules=RULES, tls=False)
        with open(os.path.join(self.s.dir, "see.lua"), "w") as f:
            f.write(SCRIPT)
        self.s.start()
        self.addCleanup(self.s.stop)

    def session(self):
        c = self.s.raw()
        c.expect(220)
        text = c.expect(250, "EHLO client.example.net\r\n")
        return c, text

    def test_ehlo_advertises_smtputf8_and_dsn(self):
        _c, text = self.session()
        self.assertIn("250-SMTPUTF8", text)
        self.assertIn("250-DSN", text)
        self.assertIn("250-8BITMIME", text)

    def test_utf8_recipients_stored_under_their_utf8_names(self):
        with smtplib.SMTP("127.0.0.1", self.s.port, timeout=20) as c:
            refused = c.sendmail("jörg@exämple.net", [GREEK + "@example.test",
                                                      CHINESE + "@example.test"], MSG,
                                 mail_options=["SMTPUTF8", "BODY=8BITMIME"])
        self.assertEqual(refused, {})
        greek = self.s.maildir("example.test", GREEK)
        self.assertEqual(len(greek), 1, self.s.read_log())
        self.assertTrue(os.path.isdir(os.path.join(self.s.dir, "var", "mail", "example.test",
                                                   CHINESE, "new")))
        data = read_file(greek[0])
        self.assertTrue(data.startswith("Return-Path: <jörg@exämple.net>\r\n".encode()), data)
        self.assertRegex(data, rb"\tby mx\.example\.test \(sluice\) with UTF8SMTP\r\n")
        self.assertIn("for <δοκιμή@example.test>".encode(), data)
        # Headers and body as sent, 8-bit and all; the rules matched the UTF-8 subject and sender.
        self.assertIn(MSG, data)
        self.assertIn(b"X-Greek-Subject: yes\r\n", data)
        self.assertIn(b"X-Sender-Jorg: yes\r\n", data)
        self.assertIn(b"X-From-Jorg: yes\r\n", data)
        # The rule for the Chinese recipient matched it alone.
        self.assertEqual(len(self.s.maildir("matched", CHINESE)), 1)
        self.assertEqual(self.s.maildir("matched", GREEK), [])

    def test_ascii_transaction_keeps_esmtp(self):
        with smtplib.SMTP("127.0.0.1", self.s.port, timeout=20) as c:
            c.sendmail("a@example.net", ["user@example.test"],
                       b"Subject: Kal\xc3\xa9 8-bit header\r\n\r\nx\r\n")
        data = read_file(self.s.maildir("example.test", "user")[0])
        self.assertRegex(data, rb"\(sluice\) with ESMTP\r\n")
        self.assertIn(b"Subject: Kal\xc3\xa9 8-bit header\r\n", data)

    def test_lua_sees_the_utf8_addresses(self):
        with smtplib.SMTP("127.0.0.1", self.s.port, timeout=20) as c:
            c.sendmail("jörg@exämple.net", ["lua@example.test"], MSG, mail_options=["SMTPUTF8"])
        data = read_file(self.s.maildir("example.test", "lua")[0])
        seen = re.search(rb"X-Seen: ([0-9a-f]+)", data)
        self.assertTrue(seen, data)
        r = json.loads(bytes.fromhex(seen.group(1).decode()).decode())
        self.assertEqual(r["source"], "jörg@exämple.net")
        self.assertEqual(r["subject"], "Καλημέρα κόσμε")
        self.assertEqual(r["env"]["mail_from"], "jörg@exämple.net")
        self.assertEqual(r["env"]["rcpt_to"], ["lua@example.test"])
        self.assertIs(r["env"]["smtputf8"], True)

    def test_non_ascii_without_smtputf8_is_553_5_6_7(self):
        c, _ = self.session()
        self.assertIn("553 5.6.7", c.expect(553, "MAIL FROM:<jörg@exämple.net>\r\n"))
        c.expect(250, "MAIL FROM:<a@example.net>\r\n")
        self.assertIn("553 5.6.7 SMTPUTF8 required",
                      c.expect(553, "RCPT TO:<%s@example.test>\r\n" % GREEK))
        c.expect(250, "RCPT TO:<user@example.test>\r\n")

    def test_invalid_utf8_is_refused(self):
        c, _ = self.session()
        c.expect(250, "MAIL FROM:<a@example.net> SMTPUTF8\r\n")
        for bad in (b"a\xc0\xafb", b"\xed\xa0\x80x", b"x\xc2\x85y", b"\xff", b"\xce"):
            c.send(b"RCPT TO:<" + bad + b"@example.test>\r\n")
            code, text = c.reply()
            self.assertEqual(code, 553, text)
            self.assertIn("5.6.7", text)
        # Well-formed UTF-8 that would escape the Maildir is refused by the path rules.
        c.expect(250, "RCPT TO:<%s@example.test>\r\n" % GREEK)
        c.expect(553, "RCPT TO:<../x@example.test>\r\n")
        c.expect(354, "DATA\r\n")
        c.send(MSG + b".\r\n")
        c.expect(250)
        self.assertEqual(len(self.s.maildir("example.test", GREEK)), 1)

class ULabelDomains(unittest.TestCase):
    """U-label domains in server.domains: byte-wise after ASCII lower-casing, as documented."""

    def test_u_label_domain_accepted_and_stored(self):
        s = Sluice(domains=("bücher.example", "xn--bcher-kva.example"), tls=False, rules="""
rule_set "main" { rule { name = "all", actions = { store { maildir = "var/mail/{domain}/{user}" } } } }
""").start()
        self.addCleanup(s.stop)
        with smtplib.SMTP("127.0.0.1", s.port, timeout=20) as c:
            refused = c.sendmail("a@example.net", ["Ünïcode@BüCHER.example", "a@xn--bcher-kva.example"],
                                 b"Subject: x\r\n\r\nx\r\n", mail_options=["SMTPUTF8"])
            self.assertEqual(refused, {})
            c.mail("a@example.net", ["SMTPUTF8"])
            # Only ASCII letters fold: "BÜCHER" (capital Ü) is another domain.
            self.assertEqual(c.rcpt("x@BÜCHER.example")[0], 550)
        self.assertTrue(wait_for(lambda: s.all_stored()), s.read_log())
        self.assertTrue(any("Ünïcode" in p for p in s.all_stored()), s.all_stored())

    def test_ill_formed_utf8_domain_in_config_is_refused(self):
        s = Sluice(domains=("\\255x.example",), tls=False)
        r = subprocess.run([BIN, "check", "-c", s.config_path], cwd=s.dir, capture_output=True)
        self.assertEqual(r.returncode, 1, r)
        self.assertIn(b"in domains is not a valid domain", r.stderr)


if __name__ == "__main__":
    unittest.main()
