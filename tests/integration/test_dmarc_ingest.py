"""dmarc_report_ingest over real SMTP: report mails built here (Python's email, gzip and zipfile)
around the shared samples (Google, Microsoft, Mimecast, Fastmail, SES-shaped) and hostile ones
(zip and gzip bombs, entity expansion, external entities, malformed XML, wrong root, missing
fields, mail without a report). Checks the JSON documents in the store, the metrics, the log
and that a bad report never costs the mail itself (on_failure defaults to "continue")."""
import email
import glob
import gzip
import io
import json
import os
import shutil
import smtplib
import subprocess
import tempfile
import unittest
import urllib.request
import zipfile
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY

from sluice_harness import BIN, SOURCE_DIR, Sluice, free_port
from test_config import check
from webhook_sink import WebhookSink

SAMPLES = os.path.join(SOURCE_DIR, "tests", "data", "dmarc-reports")
RUA = "dmarc-rua@example.test"

RULES = """
rule_set "main" {
  rule { name = "rua", recipients = { "%s" }, actions = {
    dmarc_report_ingest { store = "var/dmarc" %%s },
    store { maildir = "var/mail/{domain}/{user}" },
  } },
}
""" % RUA


def sample(name):
    with open(os.path.join(SAMPLES, name), "rb") as f:
        data = f.read()
    # Mail samples go over SMTP: CRLF line ends only.
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") if name.endswith(".eml") else data


def report_xml(org="Amazon SES", domain="example.test", report_id="ses-0001", rows=None,
               extra_meta=""):
    """An RFC 7489 Appendix C report in the shape SES sends."""
    rows = rows or [("192.0.2.10", 5, "none", "pass", "pass"),
                    ("2001:db8::25", 7, "quarantine", "fail", "fail")]
    recs = "".join("""
  <record>
    <row>
      <source_ip>%s</source_ip>
      <count>%d</count>
      <policy_evaluated><disposition>%s</disposition><dkim>%s</dkim><spf>%s</spf></policy_evaluated>
    </row>
    <identifiers><envelope_from>%s</envelope_from><header_from>%s</header_from></identifiers>
    <auth_results>
      <dkim><domain>%s</domain><selector>s1</selector><result>%s</result></dkim>
      <spf><domain>%s</domain><scope>mfrom</scope><result>%s</result></spf>
    </auth_results>
  </record>""" % (ip, n, disp, dkim, spf, domain, domain, domain, dkim, domain, spf)
                   for ip, n, disp, dkim, spf in rows)
    return ("""<?xml version="1.0" encoding="UTF-8"?>
<feedback>
  <version>1.0</version>
  <report_metadata>
    <org_name>%s</org_name>
    <email>postmaster@amazonses.com</email>
    <report_id>%s</report_id>
    <date_range><begin>1763856000</begin><end>1763942399</end></date_range>%s
  </report_metadata>
  <policy_published>
    <domain>%s</domain><adkim>r</adkim><aspf>r</aspf><p>quarantine</p><sp>quarantine</sp>
    <pct>100</pct><fo>0</fo>
  </policy_published>%s
</feedback>
""" % (org, report_id, extra_meta, domain, recs)).encode()


def report_mail(payload, maintype="application", subtype="gzip", filename="report.xml.gz",
                subject="Report Domain: example.test Submitter: amazonses.com Report-ID: 1"):
    """The mail of RFC 7489 §7.2.1.1: a short text and the report attached."""
    m = EmailMessage()
    m["From"] = "dmarc-reports@reporter.example.org"
    m["To"] = RUA
    m["Subject"] = subject
    m.set_content("This is an aggregate report from reporter.example.org.\n")
    m.add_attachment(payload, maintype=maintype, subtype=subtype, filename=filename)
    return m.as_bytes(policy=SMTP_POLICY)


def zipped(entries):
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries:
            z.writestr(name, data)
    return b.getvalue()


class Ingest(unittest.TestCase):
    """One server for the class: every case uses its own report id or counts deltas."""

    @classmethod
    def setUpClass(cls):
        cls.mport = free_port()
        cls.s = Sluice(rules=RULES % "", server_extra='metrics = "127.0.0.1:%d",' % cls.mport)
        cls.s.start()

    @classmethod
    def tearDownClass(cls):
        cls.s.stop()

    def send(self, data, rcpt=RUA):
        with smtplib.SMTP("127.0.0.1", self.s.port, timeout=30) as c:
            return c.sendmail("dmarc-reports@reporter.example.org", [rcpt], data)

    def metrics(self):
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.mport) as r:
            return r.read().decode()

    def metric(self, line_prefix):
        for line in self.metrics().splitlines():
            if line.startswith(line_prefix + " "):
                return int(line.split()[-1])
        return 0

    def store(self):
        return sorted(glob.glob(os.path.join(self.s.dir, "var", "dmarc", "*.json")))

    def stored(self, name):
        path = os.path.join(self.s.dir, "var", "dmarc", name)
        self.assertTrue(os.path.exists(path), "%s not in %s" % (name, self.store()))
        with open(path) as f:
            return json.load(f)

    def mails(self):
        return len(self.s.maildir("example.test", "dmarc-rua"))

    FAILURES = 'sluice_rule_publish_failure_total{rule_set="main",rule="rua"}'

    def assertRefused(self, data, reason):
        """The report is refused with reason in the log; the mail is still accepted and
        stored raw, nothing lands in the store, PublishFailure counts it."""
        before, fails, mails = self.store(), self.metric(self.FAILURES), self.mails()
        offset = len(self.s.read_log())
        self.assertEqual(self.send(data), {})
        self.s.wait_log(r"dmarc_report_ingest \(line \d+\): [^\n]*" + reason, start=offset)
        self.assertEqual(self.store(), before)
        self.assertEqual(self.metric(self.FAILURES), fails + 1)
        self.assertEqual(self.mails(), mails + 1)
        self.assertNotIn("ERROR", self.s.read_log()[offset:])

    # --- reports as the big reporters send them ------------------------------------------
    def test_ses_shaped_gzip_report(self):
        xml = report_xml(domain="ses.example.test", report_id="ses-gzip-1")
        self.assertEqual(self.send(report_mail(gzip.compress(xml))), {})
        doc = self.stored("ses.example.test!Amazon_SES!ses-gzip-1.json")
        self.assertEqual(doc["report_metadata"]["email"], "postmaster@amazonses.com")
        self.assertEqual(doc["report_metadata"]["date_range"], {"begin": 1763856000,
                                                                 "end": 1763942399})
        self.assertEqual(doc["policy_published"]["p"], "quarantine")
        self.assertEqual(doc["policy_published"]["pct"], 100)
        self.assertEqual(len(doc["records"]), 2)
        r = doc["records"][1]
        self.assertEqual(r["source_ip"], "2001:db8::25")
        self.assertEqual(r["count"], 7)
        self.assertEqual(r["policy_evaluated"], {"disposition": "quarantine", "dkim": "fail",
                                                 "spf": "fail"})
        self.assertEqual(r["identifiers"]["header_from"], "ses.example.test")
        self.assertEqual(r["auth_results"]["dkim"][0]["selector"], "s1")
        self.assertEqual(r["auth_results"]["spf"][0]["scope"], "mfrom")
        self.assertEqual(doc["received"]["mail_from"], "dmarc-reports@reporter.example.org")
        text = self.metrics()
        self.assertIn('sluice_dmarc_report_messages_total{domain="ses.example.test",'
                      'source_ip="2001:db8::25",disposition="quarantine",dkim="fail",spf="fail"}'
                      ' 7', text)
        self.assertIn('sluice_dmarc_report_messages_total{domain="ses.example.test",'
                      'source_ip="192.0.2.10",disposition="none",dkim="pass",spf="pass"} 5', text)
        self.s.wait_log(r"dmarc report \(gzip\) from Amazon SES id ses-gzip-1 for ses.example.test: "
                        r"2 records stored")

    @unittest.skipUnless(shutil.which("promtool"), "promtool (Debian prometheus) not installed")
    def test_promtool_accepts_the_exposition(self):
        self.send(report_mail(gzip.compress(report_xml(domain="prom.example.test",
                                                       report_id="prom-1"))))
        r = subprocess.run(["promtool", "check", "metrics"], input=self.metrics().encode(),
                           capture_output=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_same_report_twice_is_stored_and_counted_once(self):
        xml = report_xml(domain="twice.example.test", report_id="dup-1")
        label = ('sluice_dmarc_report_messages_total{domain="twice.example.test",'
                 'source_ip="192.0.2.10",disposition="none",dkim="pass",spf="pass"}')
        self.send(report_mail(gzip.compress(xml)))
        self.send(report_mail(zipped([("r.xml", xml)]), subtype="zip", filename="r.zip"))
        self.assertEqual(self.metric(label), 5)
        self.assertEqual(len([p for p in self.store() if "dup-1" in p]), 1)
        self.s.wait_log(r"id dup-1 for twice.example.test already ingested")

    def test_microsoft_plain_xml_and_gzip(self):
        xml = sample("protection.outlook.com_example.com_1711756800_1711843200.xml")
        self.send(report_mail(gzip.compress(xml), subtype="gzip",
                              filename="protection.outlook.com!example.com!1711756800!"
                                       "1711843200.xml.gz"))
        doc = self.stored("example.com!Outlook.com!cfeafefe4129445e8c81018bd9177197.json")
        self.assertEqual(doc["records"][0]["source_ip"], "100.24.188.149")
        self.assertEqual(doc["records"][0]["identifiers"]["envelope_to"], "hotmail.com")

    def test_google_zip_mails_as_sent(self):
        for eml, name in (("google-report-borschow.eml",
                           "borschow.com!google.com!"),
                          ("twilight.eml", "twlnet.com!google.com!")):
            self.assertEqual(self.send(sample(eml)), {})
            self.assertTrue([p for p in self.store() if os.path.basename(p).startswith(name)],
                            self.store())

    def test_mimecast_gzip_single_part_mail(self):
        self.send(sample("mimecast-weird-gzip.eml"))
        self.assertTrue([p for p in self.store() if "!Mimecast!" in p], self.store())

    def test_zip_and_gzip_samples_and_text_xml(self):
        self.send(report_mail(sample("fastmail.com_example.com_1516060800_1516147199_102675056"
                                     ".xml.gz"), filename="f.xml.gz"))
        self.assertTrue([p for p in self.store() if "!FastMail_Pty_Ltd!" in p], self.store())
        self.send(report_mail(sample("estadocuenta1.infonacot.gob.mx_example.com_1536853302_"
                                     "1536939702_2940.xml.zip"), subtype="zip",
                              filename="e.zip"))
        self.assertTrue([p for p in self.store() if "!XYZ_Corporation!" in p], self.store())
        self.send(report_mail(sample("rfc9990-sample.xml"), maintype="text", subtype="xml",
                              filename="r.xml"))
        doc = self.stored("example.com!Sample_Reporter!3v98abbp8ya9n3va8yr8oa3ya.json")
        self.assertEqual(doc["policy_published"]["discovery_method"], "treewalk")
        # windows-1252-free old reports with decimal timestamps (163.com).
        self.send(report_mail(sample("163.com_example.com_1337270400_1337356799.20120518163"
                                     ".xml"), maintype="application", subtype="xml",
                              filename="163.xml"))
        doc = self.stored("example.com!163.com!aggr_report_example.com_20120518_163.com.json")
        self.assertEqual(len(doc["records"]), 50)

    def test_report_forwarded_as_attached_message(self):
        inner = report_mail(gzip.compress(report_xml(report_id="fwd-1")))
        outer = EmailMessage()
        outer["From"] = "postmaster@example.test"
        outer["To"] = RUA
        outer["Subject"] = "Fwd: a report"
        outer.set_content("forwarded\n")
        outer.add_attachment(email.message_from_bytes(inner, policy=SMTP_POLICY))
        self.send(outer.as_bytes(policy=SMTP_POLICY))
        self.stored("example.test!Amazon_SES!fwd-1.json")

    def test_zip_entry_chosen_by_name(self):
        xml = report_xml(report_id="zip-pick")
        data = zipped([("README.txt", b"not the report"), ("report.xml", xml)])
        self.send(report_mail(data, subtype="zip", filename="r.zip"))
        self.stored("example.test!Amazon_SES!zip-pick.json")

    def test_hostile_names_stay_in_the_store(self):
        xml = report_xml(org="../../etc", report_id="../passwd\n", domain="/tmp")
        self.send(report_mail(gzip.compress(xml)))
        # No '/' and no leading dot survive: the file stays in the store directory.
        self.stored("_tmp!_._.._etc!_._passwd.json")
        # Long names are cut so the file name stays within NAME_MAX (255).
        xml = report_xml(org="o" * 500, report_id="r" * 500, domain="long." + "d" * 200)
        self.send(report_mail(gzip.compress(xml)))
        self.stored("long." + "d" * 75 + "!" + "o" * 80 + "!" + "r" * 80 + ".json")

    # --- hostile and broken reports --------------------------------------------------------
    def test_zip_bomb(self):
        bomb = zipped([("report.xml", b"<feedback>" + b" " * (30 << 20))])
        self.assertLess(len(bomb), 100000)
        self.assertRefused(report_mail(bomb, subtype="zip", filename="r.zip"),
                           r"report decompresses to more than 20971520 bytes")

    def test_gzip_bomb(self):
        bomb = gzip.compress(b"\0" * (30 << 20))
        self.assertRefused(report_mail(bomb), r"\(gzip\): report decompresses to more than")

    def test_zip_with_too_many_entries(self):
        data = zipped([("f%d.txt" % i, b"x") for i in range(40)])
        self.assertRefused(report_mail(data, subtype="zip", filename="r.zip"),
                           r"zip has more than 16 entries")

    def test_truncated_gzip(self):
        data = gzip.compress(report_xml())
        self.assertRefused(report_mail(data[:len(data) // 2]), r"truncated")

    def test_billion_laughs(self):
        lol = (b'<?xml version="1.0"?>\n<!DOCTYPE feedback [\n <!ENTITY lol "lol">\n' +
               b"".join(b' <!ENTITY lol%d "%s">\n' % (i, b"&lol%d;" % (i - 1) * 10
                                                     if i > 1 else b"&lol;" * 10)
                        for i in range(1, 10)) +
               b"]>\n<feedback><version>&lol9;</version></feedback>\n")
        self.assertRefused(report_mail(lol, maintype="text", subtype="xml", filename="r.xml"),
                           r"DOCTYPE declarations are not allowed")

    def test_external_entity(self):
        xxe = (b'<?xml version="1.0"?><!DOCTYPE feedback [<!ENTITY x SYSTEM '
               b'"file:///etc/passwd">]><feedback><version>&x;</version></feedback>')
        self.assertRefused(report_mail(gzip.compress(xxe)), r"DOCTYPE declarations")

    def test_malformed_xml(self):
        self.assertRefused(report_mail(sample("invalid_xml.xml"), maintype="text",
                                       subtype="xml", filename="r.xml"),
                           r"not well-formed")

    def test_wrong_root(self):
        self.assertRefused(report_mail(gzip.compress(b"<html><body>hi</body></html>")),
                           r"root element is <html>, not <feedback>")

    def test_missing_fields(self):
        xml = report_xml(report_id="").replace(b"<report_id></report_id>", b"")
        self.assertRefused(report_mail(gzip.compress(xml)), r"<report_id> is missing")
        xml = report_xml(rows=[("not-an-ip", 1, "none", "pass", "pass")])
        self.assertRefused(report_mail(gzip.compress(xml)),
                           r"record 1: source_ip 'not-an-ip' is not an IP address")
        xml = report_xml().replace(b"<count>5</count>", b"")
        self.assertRefused(report_mail(gzip.compress(xml)), r"record 1: <count> is missing")

    def test_not_a_report(self):
        m = EmailMessage()
        m["From"] = "someone@example.net"
        m["To"] = RUA
        m["Subject"] = "hello"
        m.set_content("Is this the DMARC mailbox?\n")
        self.assertRefused(m.as_bytes(policy=SMTP_POLICY), r"not a DMARC report: no DMARC report attachment")
        self.assertRefused(report_mail(b"just some bytes", subtype="octet-stream",
                                       filename="r.xml.gz"),
                           r"neither gzip, zip nor XML")


class Policy(unittest.TestCase):
    def send(self, s, data):
        with smtplib.SMTP("127.0.0.1", s.port, timeout=30) as c:
            return c.sendmail("a@example.net", [RUA], data)

    def test_tempfail_when_asked(self):
        s = Sluice(rules=RULES % ', on_failure = "tempfail"').start()
        self.addCleanup(s.stop)
        with self.assertRaises(smtplib.SMTPDataError) as e:
            self.send(s, b"Subject: no report\r\n\r\nhi\r\n")
        self.assertEqual(e.exception.smtp_code, 451)

    def test_webhook_gets_the_document(self):
        sink = WebhookSink().start()
        self.addCleanup(sink.stop)
        s = Sluice(rules=RULES % (', webhook = "%s"' % sink.url)).start()
        self.addCleanup(s.stop)
        self.send(s, report_mail(gzip.compress(report_xml(report_id="hook-1"))))
        got = sink.notifications()
        self.assertEqual(len(got), 1)
        headers, doc = got[0]
        self.assertEqual(headers["Content-Type"], "application/json")
        self.assertEqual(doc["report_metadata"]["report_id"], "hook-1")
        self.assertEqual(len(doc["records"]), 2)

    def test_webhook_down_is_a_failure_after_the_store(self):
        port = free_port()
        s = Sluice(rules=RULES % (', webhook = "http://127.0.0.1:%d/x"' % port)).start()
        self.addCleanup(s.stop)
        self.assertEqual(self.send(s, report_mail(gzip.compress(report_xml()))), {})
        s.wait_log(r"dmarc_report_ingest \(line \d+\): POST http://127.0.0.1:%d/x" % port)
        self.assertEqual(len(glob.glob(os.path.join(s.dir, "var", "dmarc", "*.json"))), 1)


class Example(unittest.TestCase):
    """examples/dmarc_reports.lua through `sluice test` (nothing written without --apply)."""
    CFG = os.path.join(os.path.abspath(SOURCE_DIR), "examples", "dmarc_reports.lua")

    def trace(self, message, *extra):
        d = tempfile.mkdtemp(prefix="sluice-dry-")
        path = os.path.join(d, "msg.eml")
        with open(path, "wb") as f:
            f.write(message)
        r = subprocess.run([BIN, "test", "-c", self.CFG, "--json", "--from",
                            "noreply-dmarc-support@google.com", "--to", "dmarc@example.test",
                            "--verdicts", "spf=PASS,dkim=PASS,dmarc=PASS,spam=PASS,virus=PASS"]
                           + list(extra) + [path], capture_output=True, text=True, cwd=d,
                           timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        return d, json.loads(r.stdout)

    def test_google_report_dry_run_and_apply(self):
        d, t = self.trace(sample("google-report-borschow.eml"))
        ingest = t["rules"][0]["actions"][0]
        self.assertEqual(ingest["action"], "dmarc_report_ingest")
        self.assertEqual(ingest["result"], "ok")
        self.assertIn("DMARC report (zip) from google.com, id 949348866075514174, for "
                      "borschow.com: 1 records", ingest["detail"])
        self.assertIn("would write var/dmarc/borschow.com!google.com!949348866075514174.json",
                      ingest["detail"])
        self.assertFalse(os.path.exists(os.path.join(d, "var")))
        d, t = self.trace(sample("google-report-borschow.eml"), "--apply")
        self.assertTrue(os.path.exists(os.path.join(
            d, "var", "dmarc", "borschow.com!google.com!949348866075514174.json")))

    def test_not_a_report_continues(self):
        _, t = self.trace(b"Subject: hi\r\n\r\nno report\r\n")
        ingest, store = t["rules"][0]["actions"]
        self.assertEqual(ingest["result"], "failed")
        self.assertIn("no DMARC report attachment", ingest["error"])
        self.assertEqual(store["result"], "ok")
        self.assertTrue(t["reply"].startswith("250 "), t["reply"])


class Config(unittest.TestCase):
    SERVER = ('server { listen = { "127.0.0.1:2599" }, domains = { "example.test" } }\n'
              'rule_set "main" { rule { name = "r", actions = {\n')

    def error(self, action):
        path, r = check(self.SERVER + action + "\n} } }\n")
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertTrue(r.stderr.startswith(path + ":3: "), r.stderr)
        return r.stderr

    def test_errors(self):
        self.assertIn("needs store, webhook or both", self.error("dmarc_report_ingest { }"))
        self.assertIn("must start with http",
                      self.error('dmarc_report_ingest { webhook = "ftp://x" }'))
        self.assertIn("max_decompressed",
                      self.error('dmarc_report_ingest { store = "d", max_decompressed = 10 }'))
        self.assertIn("unknown key",
                      self.error('dmarc_report_ingest { store = "d", stor = "x" }'))


if __name__ == "__main__":
    unittest.main()
