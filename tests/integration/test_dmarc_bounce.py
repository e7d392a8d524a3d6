"""The DMARC bounce policy (examples/dmarc_bounce.lua) through real SMTP sessions, with
verdicts computed against a real DNS server: FAIL+REJECT is refused in the session with
550 5.7.1 and SES's message, FAIL+QUARANTINE goes to Junk, GRAY and PASS are stored."""
import os
import re
import smtplib
import unittest

from auth_fixtures import ZonesTestCase, message
from sluice_harness import SOURCE_DIR, Sluice, read_file


def example_config(port, dns_port, directory):
    with open(os.path.join(SOURCE_DIR, "examples", "dmarc_bounce.lua")) as f:
        text = f.read()
    text = text.replace('"0.0.0.0:25"', '"127.0.0.1:%d"' % port)
    text = text.replace('"/var/lib/sluice"', '"var"').replace('"/var/mail/', '"var/mail/')
    return 'dns { servers = { "127.0.0.1:%d" }, timeout_ms = 2000 }\n' % dns_port + text


class DmarcBouncePolicy(ZonesTestCase):
    def setUp(self):
        self.s = Sluice(config_text="-- replaced below\n")
        self.s.write_config(example_config(self.s.port, self.dns.port, self.s.dir))
        self.s.start()
        self.addCleanup(self.s.stop)

    def send(self, mail_from, from_header):
        with smtplib.SMTP("127.0.0.1", self.s.port, timeout=20) as c:
            c.ehlo("client.example.net")
            c.mail(mail_from)
            c.rcpt("user@example.test")
            return c.data(message(from_header))

    def test_fail_reject_is_refused_in_the_session(self):
        code, text = self.send("bounce@spf-fail.example.com", "a@spf-fail.example.com")
        self.assertEqual(code, 550)
        self.assertEqual(text, b"5.7.1 Unauthenticated email is not accepted due to the sending "
                               b"domain's DMARC policy.")
        self.assertEqual(self.s.all_stored(), [])

    def test_fail_quarantine_goes_to_junk(self):
        code, _ = self.send("bounce@spf-fail.example.com", "a@q.example.com")
        self.assertEqual(code, 250)
        junk = self.s.maildir("example.test", "user/.Junk")
        self.assertEqual(len(junk), 1)
        data = read_file(junk[0])
        self.assertIn(b"X-Sluice-Quarantine: dmarc", data)
        self.assertIn(b"X-Sluice-DMARC-Policy: QUARANTINE", data)
        self.assertEqual(self.s.maildir("example.test", "user"), [])

    def test_gray_and_pass_are_stored(self):
        self.assertEqual(self.send("x@spf-fail.example.com", "a@pnone.example.com")[0], 250)
        self.assertEqual(self.send("bounce@example.com", "a@example.com")[0], 250)
        inbox = [read_file(f) for f in self.s.maildir("example.test", "user")]
        verdicts = sorted(re.search(rb"X-Sluice-DMARC-Verdict: (\w+)", d).group(1) for d in inbox)
        self.assertEqual(verdicts, [b"GRAY", b"PASS"])


if __name__ == "__main__":
    unittest.main()
