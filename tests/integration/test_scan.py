"""Spam and virus scanning through real SMTP sessions with real scanners (rspamd with Debian's
stock rules, clamd with an EICAR signature written by the test): verdicts, X-Sluice-* headers,
in-session rejection of viruses, Junk for spam, and degradation to PROCESSING_FAILED when a
scanner is down, hangs, or the message is over max_size."""
import base64
import re
import os
import subprocess
import threading
import unittest

from sluice_harness import BIN, SOURCE_DIR, Sluice, read_file
from scanners import (CLAMD, EICAR, EICAR_SIGNATURE, GTUBE, RSPAMD, Clamd, Listener, Rspamd,
                      dead_port)
from test_config import check

HAVE_SCANNERS = bool(CLAMD and RSPAMD)
WHY = "rspamd and clamd not installed (make test-deps installs rspamd and clamav-daemon)"

# The rules of examples/spam_filter.lua, for the harness's server block.
RULES = """
rule_set "main" {
  rule { name = "virus", recipients = { "example.test" }, scan = true,
         when = { virus = "FAIL" },
         actions = { bounce { smtp_reply_code = "554", status_code = "5.7.1",
                              message = "Virus found: {virus}" }, stop {} } },
  rule { name = "junk", recipients = { "example.test" }, scan = true,
         when = { spam = "FAIL" },
         actions = { store { maildir = "var/mail/junk/{user}" }, stop {} } },
  rule { name = "tag", recipients = { "example.test" }, scan = true,
         when = { spam = "GRAY" },
         actions = { add_header { name = "X-Spam", value = "yes" } } },
  rule { name = "inbox", actions = { store { maildir = "var/mail/{domain}/{user}" } } },
}
"""

SCANNERS = None  # (rspamd, clamd), one pair for the module


def setUpModule():
    global SCANNERS
    if not HAVE_SCANNERS:
        return
    clamd = Clamd().start()
    try:
        rspamd = Rspamd().start()
    except Exception:
        clamd.stop()
        raise
    SCANNERS = (rspamd, clamd)


def tearDownModule():
    if SCANNERS:
        for s in SCANNERS:
            s.stop()


def scan_block(rspamd=None, clamd=None, timeout_ms=10000, max_size=None):
    parts = []
    if rspamd:
        parts.append('rspamd = "%s"' % rspamd)
    if clamd:
        parts.append('clamd = "%s"' % clamd)
    parts.append("timeout_ms = %d" % timeout_ms)
    if max_size:
        parts.append("max_size = %d" % max_size)
    return "scan { %s }\n" % ", ".join(parts)


def start_sluice(scan, rules=RULES, domains=("example.test", "other.test")):
    return Sluice(rules=scan + rules, domains=domains, tls=False).start()


def message(subject, body=b"Hi Bob, shall we have lunch tomorrow at noon? Alice\r\n",
            extra=b""):
    return (b"From: Alice <alice@example.net>\r\nTo: bob@example.test\r\n"
            b"Subject: " + subject.encode() + b"\r\nMessage-ID: <" +
            subject.replace(" ", ".").encode() + b"@example.net>\r\n"
            b"Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n" + extra + b"\r\n" + body)


def eicar_mime(subject="invoice"):
    b64 = base64.encodebytes(EICAR).replace(b"\n", b"\r\n")
    return message(subject, extra=b"MIME-Version: 1.0\r\n"
                   b"Content-Type: multipart/mixed; boundary=\"b1\"\r\n",
                   body=b"--b1\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n"
                   b"--b1\r\nContent-Type: application/octet-stream; name=\"e.com\"\r\n"
                   b"Content-Transfer-Encoding: base64\r\n"
                   b"Content-Disposition: attachment; filename=\"e.com\"\r\n\r\n" + b64 +
                   b"--b1--\r\n")


def eicar_forwarded():
    inner = eicar_mime("inner")
    return message("Fwd: invoice", extra=b"MIME-Version: 1.0\r\n"
                   b"Content-Type: multipart/mixed; boundary=\"outer\"\r\n",
                   body=b"--outer\r\nContent-Type: text/plain\r\n\r\nForwarding this.\r\n"
                   b"--outer\r\nContent-Type: message/rfc822\r\n"
                   b"Content-Disposition: attachment\r\n\r\n" + inner +
                   b"\r\n--outer--\r\n")


def send(sluice, body, rcpt="bob@example.test", client=None):
    c = client or sluice.raw(timeout=60)
    c.expect(220)
    c.expect(250, "EHLO client.example.net\r\n")
    c.expect(250, "MAIL FROM:<alice@example.net>\r\n")
    c.expect(250, "RCPT TO:<%s>\r\n" % rcpt)
    c.expect(354, "DATA\r\n")
    c.send(body + b".\r\n")
    reply = c.reply()
    c.expect(221, "QUIT\r\n")
    return reply


def headers_of(path):
    data = read_file(path)
    return data[:data.index(b"\r\n\r\n")].decode()


def header(path, name):
    """The unfolded values of header name in the stored copy."""
    out = []
    for field in headers_of(path).replace("\r\n\t", " ").replace("\r\n ", " ").split("\r\n"):
        k, _, v = field.partition(":")
        if k.lower() == name.lower():
            out.append(v.strip())
    return out


@unittest.skipUnless(HAVE_SCANNERS, WHY)
class RealScanners(unittest.TestCase):
    """rspamd and clamd as a mail operator runs them; sluice configured like the example."""

    @classmethod
    def setUpClass(cls):
        rspamd, clamd = SCANNERS
        cls.sluice = start_sluice(scan_block(rspamd.url, "127.0.0.1:%d" % clamd.port))

    @classmethod
    def tearDownClass(cls):
        cls.sluice.stop()

    def stored(self, user="bob", box=("example.test",)):
        return self.sluice.maildir(*box, user)

    def test_clean_mail_passes_with_headers(self):
        code, _ = send(self.sluice, message("lunch tomorrow"))
        self.assertEqual(code, 250)
        path = next(p for p in self.stored() if b"lunch tomorrow" in read_file(p))
        self.assertEqual(header(path, "X-Sluice-Spam-Verdict"), ["PASS"])
        self.assertEqual(header(path, "X-Sluice-Virus-Verdict"), ["PASS"])
        score = header(path, "X-Sluice-Spam-Score")
        self.assertEqual(len(score), 1)
        self.assertRegex(score[0], r"^-?\d+\.\d\d / \d+\.\d\d")
        self.assertEqual(header(path, "X-Spam"), [])

    def test_eicar_in_base64_attachment_is_refused_in_session(self):
        code, text = send(self.sluice, eicar_mime())
        self.assertEqual(code, 554)
        self.assertTrue(text.startswith("554 5.7.1 Virus found: " + EICAR_SIGNATURE), text)
        self.assertFalse(any(b"invoice" in read_file(p) for p in self.sluice.all_stored()))
        self.sluice.wait_log(r"scan qid=\S+ .*virus=FAIL signature=" + EICAR_SIGNATURE)
        # and the message's own line says why it was refused
        self.sluice.wait_log(r"message qid=\S+ .*result=\"554 5\.7\.1 Virus found[^\n]* "
                             r"spam=PASS virus=FAIL virus_name=" + re.escape(EICAR_SIGNATURE))

    def test_eicar_in_forwarded_message_is_refused_in_session(self):
        code, text = send(self.sluice, eicar_forwarded())
        self.assertEqual(code, 554, text)
        self.assertIn(EICAR_SIGNATURE, text)
        self.assertFalse(any(b"Fwd: invoice" in read_file(p) for p in self.sluice.all_stored()))

    def test_gtube_is_spam_fail_and_goes_to_junk(self):
        code, _ = send(self.sluice, message("cheap stuff", body=b"Buy now\r\n\r\n" + GTUBE +
                                            b"\r\n"))
        self.assertEqual(code, 250)
        junk = [p for p in self.sluice.maildir("junk", "bob") if b"cheap stuff" in read_file(p)]
        self.assertEqual(len(junk), 1)
        self.assertEqual(header(junk[0], "X-Sluice-Spam-Verdict"), ["FAIL"])
        self.assertEqual(header(junk[0], "X-Sluice-Virus-Verdict"), ["PASS"])
        self.assertIn("GTUBE", header(junk[0], "X-Sluice-Spam-Score")[0])
        self.assertFalse(any(b"cheap stuff" in read_file(p) for p in self.stored()))

    def test_probable_spam_is_gray_and_tagged(self):
        # No From, To, Date or Message-ID: rspamd's stock rules score this about 7.4, between
        # "add header" (6) and "reject" (15), from header structure alone (no DNS involved).
        code, _ = send(self.sluice, b"Subject: bare note\r\n\r\nhello\r\n")
        self.assertEqual(code, 250)
        path = next(p for p in self.stored() if b"bare note" in read_file(p))
        self.assertEqual(header(path, "X-Sluice-Spam-Verdict"), ["GRAY"])
        self.assertEqual(header(path, "X-Spam"), ["yes"])
        self.assertRegex(header(path, "X-Sluice-Spam-Score")[0],
                         r"^\d+\.\d\d / 15\.00 \(.*MISSING_MID\(2\.50\)")
        for line in headers_of(path).split("\r\n"):  # folded like RFC 5322 asks
            self.assertLessEqual(len(line), 78, line)
            self.assertEqual(line, line.rstrip(), "trailing white space")

    def test_forged_verdict_headers_are_removed(self):
        forged = message("forged", extra=b"X-Sluice-Spam-Verdict: PASS\r\n"
                         b"X-Sluice-Virus-Verdict: PASS\r\n\tfolded\r\n"
                         b"x-sluice-spam-score: 0.00 / 15.00\r\n")
        code, _ = send(self.sluice, forged)
        self.assertEqual(code, 250)
        path = next(p for p in self.stored() if b"Subject: forged" in read_file(p))
        self.assertEqual(header(path, "X-Sluice-Virus-Verdict"), ["PASS"])
        self.assertEqual(header(path, "X-Sluice-Spam-Verdict"), ["PASS"])
        self.assertEqual(len(header(path, "X-Sluice-Spam-Score")), 1)
        self.assertNotIn(b"folded", read_file(path))

    def test_rule_without_scan_means_no_scan_and_no_headers(self):
        code, _ = send(self.sluice, message("not scanned", body=GTUBE + b"\r\n"),
                       rcpt="carol@other.test")
        self.assertEqual(code, 250)
        paths = self.sluice.maildir("other.test", "carol")
        self.assertEqual(len(paths), 1)
        self.assertNotIn("X-Sluice-", headers_of(paths[0]))
        qid = self.sluice.wait_log(r"message qid=(\S+) .*to=carol@other.test").group(1)
        self.assertNotIn("scan qid=%s" % qid, self.sluice.read_log())

    def test_unix_socket_clamd(self):
        rspamd, clamd = SCANNERS
        s = start_sluice(scan_block(clamd="unix:" + clamd.socket_path))
        try:
            code, text = send(s, eicar_mime())
            self.assertEqual(code, 554, text)
            code, _ = send(s, message("clean over unix"))
            self.assertEqual(code, 250)
            path = s.maildir("example.test", "bob")[0]
            self.assertEqual(header(path, "X-Sluice-Virus-Verdict"), ["PASS"])
            # No rspamd configured: the spam verdict cannot be had.
            self.assertEqual(header(path, "X-Sluice-Spam-Verdict"), ["PROCESSING_FAILED"])
        finally:
            s.stop()


class ScannerOutages(unittest.TestCase):
    """Stand-ins for broken scanners: nothing listening, or a server that never answers."""

    def tearDown(self):
        self.sluice.stop()

    def test_scanners_down_give_processing_failed(self):
        self.sluice = start_sluice(scan_block("http://127.0.0.1:%d" % dead_port(),
                                              "127.0.0.1:%d" % dead_port()))
        code, _ = send(self.sluice, eicar_mime("down"))
        self.assertEqual(code, 250)  # nothing could be judged; the inbox rule still applies
        path = self.sluice.maildir("example.test", "bob")[0]
        self.assertEqual(header(path, "X-Sluice-Spam-Verdict"), ["PROCESSING_FAILED"])
        self.assertEqual(header(path, "X-Sluice-Virus-Verdict"), ["PROCESSING_FAILED"])
        self.assertEqual(header(path, "X-Sluice-Spam-Score"), [])
        self.sluice.wait_log(r"warning scan .*spam=PROCESSING_FAILED .*virus=PROCESSING_FAILED "
                             r".*spam_error=.*(refused|Couldn't connect|connect)")

    def test_over_max_size_is_not_sent_to_the_scanners(self):
        hang = Listener()
        try:
            self.sluice = start_sluice(scan_block("http://127.0.0.1:%d" % hang.port,
                                                  "127.0.0.1:%d" % hang.port, max_size=2048))
            code, _ = send(self.sluice, message("big", body=(b"x" * 78 + b"\r\n") * 40))
            self.assertEqual(code, 250)
            path = self.sluice.maildir("example.test", "bob")[0]
            self.assertEqual(header(path, "X-Sluice-Spam-Verdict"), ["PROCESSING_FAILED"])
            self.assertEqual(header(path, "X-Sluice-Virus-Verdict"), ["PROCESSING_FAILED"])
            self.sluice.wait_log(r"spam_error=\"message over scan.max_size")
            self.assertEqual(hang.accepted, 0)
        finally:
            hang.close()

    def test_hanging_scanner_times_out_while_other_sessions_are_served(self):
        hang = Listener()
        try:
            self.sluice = start_sluice(scan_block("http://127.0.0.1:%d" % hang.port,
                                                  "127.0.0.1:%d" % hang.port, timeout_ms=8000))
            result = {}
            slow = threading.Thread(target=lambda: result.update(
                reply=send(self.sluice, message("slow one"))))
            slow.start()
            # The scan of "slow one" is under way once the scanner has its connection.
            self.assertTrue(hang.wait_accepted(1))
            code, _ = send(self.sluice, message("meanwhile"), rcpt="carol@other.test")
            self.assertEqual(code, 250)
            self.assertNotIn("reply", result)  # the hanging scanner has not answered
            self.assertEqual(len(self.sluice.maildir("other.test", "carol")), 1)
            slow.join(60)
            self.assertEqual(result["reply"][0], 250)
            path = self.sluice.maildir("example.test", "bob")[0]
            self.assertEqual(header(path, "X-Sluice-Spam-Verdict"), ["PROCESSING_FAILED"])
            self.assertEqual(header(path, "X-Sluice-Virus-Verdict"), ["PROCESSING_FAILED"])
            self.sluice.wait_log(r"spam_error=.*(timed out|Timeout)")
            # One budget for both scanners: rspamd used it up, clamd is not tried after it.
            self.assertEqual(hang.accepted, 1)
        finally:
            hang.close()


SERVER = """server {
  listen = { "127.0.0.1:2599" },
  hostname = "mx.example.test",
  domains = { "example.test" },
}
"""
SCAN_RULES = """rule_set "main" {
  rule { name = "scanned", scan = true, actions = { store { maildir = "var/mail/{domain}/{user}" } } },
}
"""


class ScanConfig(unittest.TestCase):
    def assertConfigError(self, text, line, fragment):
        path, r = check(text)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        first = r.stderr.strip().splitlines()[0]
        self.assertTrue(first.startswith("%s:%d: " % (path, line)), first)
        self.assertIn(fragment, first)

    def test_errors_carry_file_and_line(self):
        self.assertConfigError(SERVER + 'scan { spamd = "x" }\n' + SCAN_RULES, 6,
                               "unknown key 'spamd'")
        self.assertConfigError(SERVER + 'scan { rspamd = "127.0.0.1:11333" }\n' + SCAN_RULES,
                               6, "base URL")
        self.assertConfigError(SERVER + 'scan { clamd = "localhost:3310" }\n' + SCAN_RULES, 6,
                               "numeric")
        self.assertConfigError(SERVER + 'scan { clamd = "unix:clamd.ctl" }\n' + SCAN_RULES, 6,
                               "absolute")
        self.assertConfigError(SERVER + "scan { timeout_ms = 5 }\n" + SCAN_RULES, 6,
                               "give rspamd")
        self.assertConfigError(SERVER + 'scan { clamd = "127.0.0.1:1", timeout_ms = 0 }\n' +
                               SCAN_RULES, 6, "timeout_ms")
        self.assertConfigError(SERVER + 'scan { clamd = "127.0.0.1:1" }\n'
                               'scan { clamd = "127.0.0.1:1" }\n' + SCAN_RULES, 7,
                               "given twice")

    def test_check_warns_when_scan_has_no_scanner(self):
        path, r = check(SERVER + SCAN_RULES)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("%s:7: warning: rule 'scanned' has scan = true but no scanner" % path,
                      r.stderr)
        path, r = check(SERVER + 'scan { rspamd = "http://127.0.0.1:11333" }\n' + SCAN_RULES)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("but no clamd is configured", r.stderr)
        self.assertIn("scan (line 6): rspamd http://127.0.0.1:11333, clamd (none)", r.stdout)
        path, r = check(SERVER + 'scan { rspamd = "http://127.0.0.1:11333/", clamd = '
                        '"unix:/run/clamav/clamd.ctl" }\n' + SCAN_RULES)
        self.assertEqual((r.returncode, r.stderr), (0, ""))

    def test_example_config_checks(self):
        path = os.path.join(SOURCE_DIR, "examples", "spam_filter.lua")
        r = subprocess.run([BIN, "check", "-c", path], capture_output=True, text=True,
                           cwd=SOURCE_DIR)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stderr, "")
        self.assertIn("scan (line", r.stdout)


if __name__ == "__main__":
    unittest.main()
