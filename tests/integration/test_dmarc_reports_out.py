"""DMARC aggregate reports out: real SMTP sessions judged against a real DNS server (nsd) are
recorded in data_dir's SQLite store, and `sluice dmarc-report --dry-run DIR` writes the RFC 7489
Appendix C XML per domain with a rua=, aggregated by source and results. The XML is fed back
through dmarc_report_ingest as a round trip."""
import email
import email.policy
import glob
import gzip
import os
import smtplib
import sqlite3
import time
import unittest
import xml.etree.ElementTree as ET

from auth_fixtures import Keys, message, sign, zones
from dns_harness import DnsServer, txt
from sluice_harness import Sluice, read_file
from test_dmarc_ingest import report_mail

RULES = """
dns { servers = { "127.0.0.1:%d" }, timeout_ms = 2000 }
dmarc_reports { org_name = "Sluice Test MX", email = "dmarc-reports@example.test",
                interval = "24h", send = false }
rule_set "main" {
  rule { name = "rua", recipients = { "rua@example.test" }, actions = {
    dmarc_report_ingest { store = "var/dmarc-in" },
  } },
  rule { name = "strict", recipients = { "strict@example.test" }, actions = {
    bounce_on_dmarc_fail { },
    store { maildir = "var/mail/{domain}/{user}" },
  } },
  rule { name = "all", recipients = { "example.test" }, actions = {
    store { maildir = "var/mail/{domain}/{user}" },
  } },
}
"""


class ReportsOut(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.keys = Keys()
        z = zones(cls.keys)
        z["rua.example"] = [
            ("@", "TXT", txt("v=spf1 ip4:127.0.0.1 -all")),
            ("_dmarc", "TXT", txt("v=DMARC1; p=quarantine; rua=mailto:dmarc@rua.example; fo=1")),
            ("sel1._domainkey", "TXT", cls.keys.sel1_txt),
        ]
        z["rej.example"] = [
            ("@", "TXT", txt("v=spf1 ip4:127.0.0.1 -all")),
            ("_dmarc", "TXT", txt("v=DMARC1; p=reject; rua=mailto:d@rej.example")),
        ]
        cls.dns = DnsServer(z).start()

    @classmethod
    def tearDownClass(cls):
        cls.dns.stop()

    def setUp(self):
        self.s = Sluice(rules=RULES % self.dns.port, server_extra="auth_checks = true,").start()
        self.addCleanup(self.s.stop)

    def send(self, mail_from, data, rcpt="user@example.test"):
        with smtplib.SMTP("127.0.0.1", self.s.port, timeout=20) as c:
            c.ehlo("client.example.net")
            return c.sendmail(mail_from, [rcpt], data)

    def report(self, *extra):
        out = os.path.join(self.s.dir, "out")
        r = self.s.run_cli("dmarc-report", "-c", self.s.config_path, "--dry-run", out, *extra)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return out, r.stdout

    def test_aggregate_report_per_rua_domain(self):
        # Two SPF-aligned passes, one DKIM-aligned pass (signed, MAIL FROM elsewhere), one
        # failure (quarantine), and mail from example.com, whose record has no rua=.
        self.send("a@rua.example", message("a@rua.example"))
        self.send("b@rua.example", message("b@rua.example"))
        signed = sign(message("c@rua.example"), self.keys.sel1_key, "rua.example", "sel1")
        self.send("c@spf-fail.example.com", signed)
        self.send("x@spf-fail.example.com", message("d@rua.example"))
        self.send("a@example.com", message("a@example.com"))
        out, stdout = self.report("--begin", "0", "--end", str(int(time.time()) + 3600))
        files = sorted(os.listdir(out))
        self.assertEqual(len(files), 1, files)
        self.assertRegex(files[0], r"^example\.test!rua\.example!0!\d+\.xml$")
        self.assertIn("rua=mailto:dmarc@rua.example", stdout)
        root = ET.parse(os.path.join(out, files[0])).getroot()
        self.assertEqual(root.tag, "feedback")
        self.assertEqual(root.findtext("report_metadata/org_name"), "Sluice Test MX")
        self.assertEqual(root.findtext("report_metadata/email"), "dmarc-reports@example.test")
        self.assertEqual(root.findtext("report_metadata/date_range/begin"), "0")
        pp = root.find("policy_published")
        self.assertEqual([(e.tag, e.text) for e in pp],
                         [("domain", "rua.example"), ("adkim", "r"), ("aspf", "r"),
                          ("p", "quarantine"), ("sp", "quarantine"), ("pct", "100"),
                          ("fo", "1")])
        rows = {}
        for rec in root.findall("record"):
            key = (rec.findtext("row/policy_evaluated/disposition"),
                   rec.findtext("row/policy_evaluated/dkim"),
                   rec.findtext("row/policy_evaluated/spf"))
            self.assertEqual(rec.findtext("row/source_ip"), "127.0.0.1")
            self.assertEqual(rec.findtext("identifiers/header_from"), "rua.example")
            self.assertEqual(rec.findtext("identifiers/envelope_to"), "example.test")
            rows.setdefault(key, []).append(rec)
        self.assertEqual(sorted(rows), [("none", "fail", "pass"), ("none", "pass", "fail"),
                                        ("quarantine", "fail", "fail")])
        # The two SPF passes differ only in the local part: one row, counted twice.
        spf_pass = rows[("none", "fail", "pass")]
        self.assertEqual([r.findtext("row/count") for r in spf_pass], ["2"])
        self.assertEqual(spf_pass[0].findtext("auth_results/spf/result"), "pass")
        self.assertEqual(spf_pass[0].findtext("auth_results/spf/scope"), "mfrom")
        dkim_pass = rows[("none", "pass", "fail")][0]
        self.assertEqual(dkim_pass.findtext("auth_results/dkim/domain"), "rua.example")
        self.assertEqual(dkim_pass.findtext("auth_results/dkim/selector"), "sel1")
        self.assertEqual(dkim_pass.findtext("auth_results/dkim/result"), "pass")
        self.assertEqual(dkim_pass.findtext("identifiers/envelope_from"),
                         "spf-fail.example.com")
        failed = rows[("quarantine", "fail", "fail")][0]
        self.assertEqual(failed.findtext("auth_results/spf/result"), "fail")
        self.assertEqual(failed.findtext("auth_results/spf/domain"), "spf-fail.example.com")

        # Round trip: our report is one our own ingest accepts.
        with open(os.path.join(out, files[0]), "rb") as f:
            xml = f.read()
        self.send("dmarc-reports@example.test", report_mail(gzip.compress(xml)),
                  rcpt="rua@example.test")
        docs = glob.glob(os.path.join(self.s.dir, "var", "dmarc-in", "*.json"))
        self.assertEqual(len(docs), 1, self.s.read_log())
        self.assertIn("rua.example!Sluice_Test_MX!", docs[0])

    def test_disposition_is_what_the_rules_did(self):
        # p=reject asked for both; only the rule with bounce_on_dmarc_fail refused the mail.
        self.send("x@spf-fail.example.com", message("d@rej.example"))
        with self.assertRaises(smtplib.SMTPDataError) as e:
            self.send("x@spf-fail.example.com", message("d@rej.example"),
                      rcpt="strict@example.test")
        self.assertEqual(e.exception.smtp_code, 550)
        out, _ = self.report("--begin", "0", "--end", str(int(time.time()) + 3600))
        files = [f for f in os.listdir(out) if "!rej.example!" in f]
        self.assertEqual(len(files), 1, os.listdir(out))
        root = ET.parse(os.path.join(out, files[0])).getroot()
        got = sorted((r.findtext("row/policy_evaluated/disposition"), r.findtext("row/count"))
                     for r in root.findall("record"))
        self.assertEqual(got, [("none", "1"), ("reject", "1")])

    def test_nothing_recorded_outside_the_period(self):
        self.send("a@rua.example", message("a@rua.example"))
        out, stdout = self.report("--begin", "0", "--end", "3600")
        self.assertEqual(os.listdir(out), [])
        self.assertIn("no domain with a rua=", stdout)

    def test_check_describes_the_block(self):
        r = self.s.run_cli("check", "-c", self.s.config_path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('dmarc reports (line 12): as "Sluice Test MX" <dmarc-reports@example.test>, '
                      "every 86400 s, not sent (send = false)", r.stdout)

    def test_send_false_needs_dry_run(self):
        r = self.s.run_cli("dmarc-report", "-c", self.s.config_path)
        self.assertEqual(r.returncode, 1)
        self.assertIn("send = false", r.stderr)
        self.assertIn("--dry-run", r.stderr)


SENDER_RULES = """
dns { servers = { "127.0.0.1:%d" }, timeout_ms = 2000 }
dmarc_reports { org_name = "Sluice Test MX", email = "dmarc-reports@example.test", send = true }
rule_set "main" {
  rule { name = "all", recipients = { "example.test" }, actions = {
    store { maildir = "var/mail/{domain}/{user}" },
  } },
}
"""

COLLECTOR_RULES = """
rule_set "main" {
  rule { name = "rua", actions = {
    dmarc_report_ingest { store = "var/dmarc" },
    store { maildir = "var/mail/{domain}/{user}" },
  } },
}
"""


class Sending(unittest.TestCase):
    """Reports mailed through bounce_relay into a second sluice that ingests them; rua
    addresses outside the policy domain only with the RFC 7489 §7.1 authorization record."""

    @classmethod
    def setUpClass(cls):
        z = {
            "rua.example": [
                ("@", "TXT", txt("v=spf1 ip4:127.0.0.1 -all")),
                ("_dmarc", "TXT", txt("v=DMARC1; p=reject; rua=mailto:dmarc@rua.example!10m")),
            ],
            "ext.example": [
                ("@", "TXT", txt("v=spf1 ip4:127.0.0.1 -all")),
                ("_dmarc", "TXT", txt("v=DMARC1; p=none; rua=mailto:reports@collector.example,"
                                      "mailto:reports@unauth.example")),
            ],
            "collector.example": [
                ("ext.example._report._dmarc", "TXT", txt("v=DMARC1")),
            ],
            "unauth.example": [("@", "TXT", txt("v=spf1 -all"))],
        }
        cls.dns = DnsServer(z).start()

    @classmethod
    def tearDownClass(cls):
        cls.dns.stop()

    def test_reports_are_mailed_and_ingested(self):
        collector = Sluice(rules=COLLECTOR_RULES, tls=False,
                           domains=("rua.example", "collector.example",
                                    "unauth.example")).start()
        self.addCleanup(collector.stop)
        s = Sluice(rules=SENDER_RULES % self.dns.port,
                   server_extra='auth_checks = true, bounce_relay = "127.0.0.1:%d",'
                   % collector.port).start()
        self.addCleanup(s.stop)
        for frm in ("a@rua.example", "b@ext.example"):
            with smtplib.SMTP("127.0.0.1", s.port, timeout=20) as c:
                c.sendmail(frm, ["user@example.test"], message(frm))
        r = s.run_cli("dmarc-report", "-c", s.config_path, "--begin", "0", "--end",
                      str(int(time.time()) + 3600))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("rua.example: 1 rows, sent to 1", r.stdout)
        self.assertIn("ext.example: 1 rows, sent to 1", r.stdout)
        self.assertIn("reports@unauth.example: outside the domain and not authorized", r.stderr)
        self.assertEqual(collector.maildir("unauth.example", "reports"), [])

        mails = collector.maildir("rua.example", "dmarc")
        self.assertEqual(len(mails), 1)
        msg = email.message_from_bytes(read_file(mails[0]), policy=email.policy.default)
        self.assertRegex(msg["Subject"], r"^Report Domain: rua\.example Submitter: example\.test "
                                         r"Report-ID: <rua\.example\.0\.\d+@mx\.example\.test>$")
        self.assertEqual(msg["From"], "Sluice Test MX <dmarc-reports@example.test>")
        att = [p for p in msg.iter_attachments()]
        self.assertEqual([a.get_content_type() for a in att], ["application/gzip"])
        self.assertRegex(att[0].get_filename(), r"^example\.test!rua\.example!0!\d+\.xml\.gz$")
        root = ET.fromstring(gzip.decompress(att[0].get_content()))
        self.assertEqual(root.findtext("policy_published/p"), "reject")
        self.assertEqual(len(collector.maildir("collector.example", "reports")), 1)
        docs = sorted(os.path.basename(p) for p in
                      glob.glob(os.path.join(collector.dir, "var", "dmarc", "*.json")))
        self.assertEqual([d.split("!")[0] for d in docs], ["ext.example", "rua.example"])

    def test_daemon_sends_yesterdays_reports_once(self):
        collector = Sluice(rules=COLLECTOR_RULES, tls=False, domains=("rua.example",)).start()
        self.addCleanup(collector.stop)
        s = Sluice(rules=SENDER_RULES % self.dns.port,
                   server_extra='auth_checks = true, bounce_relay = "127.0.0.1:%d",'
                   % collector.port)
        # Evaluations from the last complete day, as the server would have recorded them
        # (the store's schema, created by the server itself first).
        s.start()
        with smtplib.SMTP("127.0.0.1", s.port, timeout=20) as c:
            c.sendmail("a@rua.example", ["user@example.test"], message("a@rua.example"))
        s.stop()
        db = sqlite3.connect(os.path.join(s.dir, "var", "dmarc", "evaluations.db"))
        yesterday = int(time.time()) // 86400 * 86400 - 86400 + 3600
        db.execute("UPDATE evaluation SET at = ?", (yesterday,))
        db.commit()
        db.close()
        s.start()
        s.wait_log(r"dmarc reports: rua\.example: 1 rows, sent to 1 of rua=mailto:dmarc@rua\."
                   r"example!10m")
        self.assertEqual(len(collector.maildir("rua.example", "dmarc")), 1)
        # A restart does not send it again.
        s.stop()
        offset = len(s.read_log())
        s.start()
        self.addCleanup(s.stop)
        s.wait_log(r"dmarc reports: 1 of 1 reports for \[\d+, \d+\) were sent before",
                   start=offset)
        self.assertEqual(len(collector.maildir("rua.example", "dmarc")), 1)


class Config(unittest.TestCase):
    def test_errors(self):
        from test_config import check
        server = ('server { listen = { "127.0.0.1:2599" }, domains = { "example.test" } }\n'
                  'rule_set "main" { rule { name = "r", actions = { drop {} } } }\n')
        for block, want in (('dmarc_reports { email = "a@b" }', "org_name"),
                            ('dmarc_reports { org_name = "o", email = "nobody" }',
                             "is not an address"),
                            ('dmarc_reports { org_name = "o", email = "a@b", interval = "5m" }',
                             "between 1h and 7d"),
                            ('dmarc_reports { org_name = "o", email = "a@b", sned = true }',
                             "unknown key")):
            path, r = check(server + block + "\n")
            self.assertEqual(r.returncode, 1, r.stdout)
            self.assertTrue(r.stderr.startswith(path + ":3: "), r.stderr)
            self.assertIn(want, r.stderr)


if __name__ == "__main__":
    unittest.main()
