"""`sluice test`: every example config run through the dry run, checking the trace (which
rules applied and why not, each action with its parameters resolved, the reply to DATA), the
JSON form, --apply, and errors."""
import json
import os
import subprocess
import tempfile
import unittest

from sluice_harness import BIN, SOURCE_DIR

EXAMPLES = os.path.join(os.path.abspath(SOURCE_DIR), "examples")
MSG = b"From: Alice <a@example.com>\nTo: user@example.test\nSubject: hello\n\nbody\n"


def run(config, *args, message=MSG, cwd=None):
    d = tempfile.mkdtemp(prefix="sluice-dry-")
    path = os.path.join(d, "msg.eml")
    with open(path, "wb") as f:
        f.write(message)
    r = subprocess.run([BIN, "test", "-c", config] + list(args) + [path], capture_output=True,
                       text=True, cwd=cwd or d, timeout=60)
    return r


def run_json(config, *args, **kw):
    r = run(config, "--json", *args, **kw)
    if r.returncode != 0:
        raise AssertionError(r.stderr)
    return json.loads(r.stdout)


ALL_PASS = "spf=PASS,dkim=PASS,dmarc=PASS,spam=PASS,virus=PASS"


class Examples(unittest.TestCase):
    def test_quickstart(self):
        r = run(os.path.join(EXAMPLES, "quickstart.lua"), "--from", "a@example.com", "--to",
                "user+news@example.test", "--to", "x@elsewhere.example", "--verdicts", ALL_PASS)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = r.stdout
        self.assertIn("RCPT TO:<user+news@example.test>: 250 2.1.5 Ok", out)
        self.assertIn("RCPT TO:<x@elsewhere.example>: 550 5.7.1 Relaying denied", out)
        self.assertRegex(out, r'rule 1 "store-all" \(line \d+\): applies to user\+news@example.test')
        self.assertRegex(out, r"1\) add_header X-Sluice-Rule: store-all \(line \d+\): ok")
        self.assertIn("user+news@example.test -> var/mail/example.test/user/new/", out)
        self.assertRegex(out, r"reply to DATA: 250 2\.0\.0 Ok")
        self.assertIn("dry run: nothing was written", out)

    def test_dmarc_bounce_reject_quarantine_pass(self):
        cfg = os.path.join(EXAMPLES, "dmarc_bounce.lua")
        t = run_json(cfg, "--from", "a@example.com", "--to", "user@example.test", "--verdicts",
                     "spf=FAIL,dkim=FAIL,dmarc=FAIL,dmarc_policy=REJECT,spam=PASS,virus=PASS")
        self.assertEqual(t["reply"], "550 5.7.1 Unauthenticated email is not accepted due to the "
                                     "sending domain's DMARC policy.")
        self.assertEqual(t["rules"][0]["actions"][0]["result"], "stop_rule_set")
        self.assertEqual(t["rules"][1]["reason"], "not reached: the chain was stopped")
        t = run_json(cfg, "--from", "a@example.com", "--to", "user@example.test", "--verdicts",
                     "spf=FAIL,dkim=FAIL,dmarc=FAIL,dmarc_policy=QUARANTINE,spam=PASS,virus=PASS")
        self.assertTrue(t["reply"].startswith("250 "))
        self.assertIn("user@example.test -> /var/mail/example.test/user/.Junk/new/",
                      t["rules"][0]["actions"][0]["detail"])
        t = run_json(cfg, "--from", "a@example.com", "--to", "user@example.test", "--verdicts",
                     ALL_PASS)
        self.assertEqual(t["rules"][0]["actions"][0]["result"], "ok")
        self.assertEqual(t["rules"][1]["actions"][0]["detail"],
                         ["user@example.test -> /var/mail/example.test/user/new/"])

    def test_multi_tenant_shows_the_webhook_body(self):
        t = run_json(os.path.join(EXAMPLES, "multi_tenant.lua"), "--from", "a@example.com",
                     "--to", "bob@alpha.example", "--verdicts", ALL_PASS)
        rule = t["rules"][0]
        self.assertTrue(rule["applied"])
        self.assertEqual(rule["recipients"], ["bob@alpha.example"])
        hook = rule["actions"][2]
        self.assertEqual(hook["action"], "webhook")
        body = hook["detail"][-1]
        self.assertTrue(body.startswith("POST https://hooks.alpha.example/inbound\n"))
        n = json.loads(body.split("\n", 1)[1])
        self.assertEqual(n["notificationType"], "Received")
        self.assertEqual(n["mail"]["commonHeaders"]["subject"], "hello")
        self.assertEqual(t["rules"][1]["reason"], "no recipient matches")

    def test_spam_filter(self):
        cfg = os.path.join(EXAMPLES, "spam_filter.lua")
        t = run_json(cfg, "--from", "a@example.com", "--to", "user@example.test", "--verdicts",
                     "spf=PASS,dkim=PASS,dmarc=PASS,spam=PASS,virus=FAIL")
        self.assertTrue(t["reply"].startswith("554 5.7.1 Message contains a virus"), t["reply"])
        t = run_json(cfg, "--from", "a@example.com", "--to", "user@example.test", "--verdicts",
                     "spf=PASS,dkim=PASS,dmarc=PASS,spam=FAIL,virus=PASS")
        self.assertEqual(t["rules"][0]["reason"], "when.virus does not hold")
        self.assertIn("user@example.test -> var/mail/example.test/user/.Junk/new/",
                      t["rules"][1]["actions"][0]["detail"])


class ReadmeScript(unittest.TestCase):
    """The README's complete script example (examples/scripts/invoice_guard.lua)."""

    def test_invoice_guard(self):
        d = tempfile.mkdtemp(prefix="sluice-dry-")
        cfg = os.path.join(d, "c.lua")
        with open(cfg, "w") as f:
            f.write('server { listen = { "127.0.0.1:2599" }, domains = { "example.test" } }\n'
                    'rule_set "main" { rule { name = "guard", actions = {\n'
                    '  lua { script = "%s" },\n'
                    '  store { maildir = "out/{user}" } } } }\n'
                    % os.path.join(EXAMPLES, "scripts", "invoice_guard.lua"))
        t = run_json(cfg, "--from", "a@example.com", "--to", "u@example.test", "--verdicts",
                     "spf=FAIL,dkim=GRAY,dmarc=GRAY,spam=PASS,virus=PASS",
                     message=b"Subject: Invoice 42\n\npay\n")
        self.assertEqual(t["reply"], "550 5.7.1 Invoices must come from an authenticated sender")
        t = run_json(cfg, "--apply", "--from", "a@example.com", "--to", "u@example.test",
                     "--verdicts", ALL_PASS, message=b"Subject: Invoice 42\n\npay\n", cwd=d)
        self.assertTrue(t["reply"].startswith("250 "))
        [name] = os.listdir(os.path.join(d, "out", "u", "new"))
        with open(os.path.join(d, "out", "u", "new", name), "rb") as f:
            self.assertIn(b"X-Checked-By: sluice\r\n", f.read())


class Behaviour(unittest.TestCase):
    CONFIG = """
server { listen = { "127.0.0.1:2599" }, hostname = "mx.example.test", domains = { "example.test" } }
rule_set "main" {
  rule { name = "secure", recipients = { "vault@example.test" }, tls = "require",
         actions = { store { maildir = "out/{user}" } } },
  rule { name = "invoices", recipients = { "u@example.test" },
         when = { subject = { contains = "invoice" } },
         actions = { add_header { name = "X-Billing", value = "yes" } } },
  rule { name = "keep", recipients = { "u@example.test" }, unless = { sender = "<>" },
         actions = { store { maildir = "out/{user}" } } },
}
"""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="sluice-dry-")
        self.cfg = os.path.join(self.dir, "c.lua")
        with open(self.cfg, "w") as f:
            f.write(self.CONFIG)

    def test_reasons_and_tls(self):
        t = run_json(self.cfg, "--from", "", "--to", "vault@example.test", "--to",
                     "u@example.test", "--verdicts", ALL_PASS, cwd=self.dir)
        self.assertEqual(t["rcpt"][0]["reply"], "530 5.7.0 Must issue a STARTTLS command first")
        self.assertEqual(t["rules"][1]["reason"], "when.subject does not hold")
        self.assertEqual(t["rules"][2]["reason"], "unless.sender holds")
        t = run_json(self.cfg, "--tls", "--from", "a@example.com", "--to", "vault@example.test",
                     "--verdicts", ALL_PASS, cwd=self.dir)
        self.assertTrue(t["rules"][0]["applied"])

    def test_reasons_name_the_header(self):
        cfg = os.path.join(self.dir, "h.lua")
        with open(cfg, "w") as f:
            f.write("""
server { listen = { "127.0.0.1:2599" }, hostname = "mx.example.test", domains = { "example.test" } }
rule_set "main" {
  rule { name = "tagged", recipients = { "u@example.test" },
         when = { header = { ["X-Tag"] = "yes" } }, actions = { stop {} } },
  rule { name = "unskipped", recipients = { "u@example.test" },
         unless = { header = { ["X-Skip"] = { contains = "y" } } }, actions = { stop {} } },
  rule { name = "inbox", actions = { store { maildir = "out/{user}" } } },
}
""")
        t = run_json(cfg, "--from", "a@example.com", "--to", "u@example.test", "--verdicts",
                     ALL_PASS, message=b"X-Skip: yes\nSubject: hi\n\nbody\n", cwd=self.dir)
        self.assertEqual(t["rules"][0]["reason"], 'when.header["X-Tag"] does not hold')
        self.assertEqual(t["rules"][1]["reason"], 'unless.header["X-Skip"] holds')

    def test_dry_run_writes_nothing_apply_does(self):
        run_json(self.cfg, "--from", "a@example.com", "--to", "u@example.test", "--verdicts",
                 ALL_PASS, cwd=self.dir)
        self.assertFalse(os.path.exists(os.path.join(self.dir, "out")))
        t = run_json(self.cfg, "--apply", "--from", "a@example.com", "--to", "u@example.test",
                     "--verdicts", ALL_PASS, message=b"Subject: an invoice\n\nx\n", cwd=self.dir)
        self.assertTrue(t["applied"])
        files = os.listdir(os.path.join(self.dir, "out", "u", "new"))
        self.assertEqual(len(files), 1)
        with open(os.path.join(self.dir, "out", "u", "new", files[0]), "rb") as f:
            data = f.read()
        self.assertIn(b"X-Billing: yes\r\nSubject: an invoice\r\n\r\nx\r\n", data)

    def test_errors(self):
        r = run(self.cfg, "--to", "u@example.test", "--verdicts", "spf=MAYBE")
        self.assertEqual(r.returncode, 1)
        self.assertIn("spf=MAYBE is not PASS", r.stderr)
        r = run(self.cfg, "--from", "a@example.com")
        self.assertEqual(r.returncode, 2)
        self.assertIn("usage: sluice test", r.stderr)
        r = run(self.cfg, "--rule-set", "nope", "--to", "u@example.test")
        self.assertEqual(r.returncode, 1)
        self.assertIn('no rule set "nope"', r.stderr)


if __name__ == "__main__":
    unittest.main()
