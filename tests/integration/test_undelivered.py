"""Undelivered recipients (issue 23): a recipient that no delivering action reaches is never
answered 250 and kept nowhere unless server { undelivered = "accept" } says so. At RCPT (rules
match, none delivers) and at the end of DATA (conditions excluded every delivering rule), for
each policy; drop is an explicit choice, not undelivered; the log lines, the counters,
`sluice check`'s warnings and `sluice test`'s trace."""
import json
import os
import re
import signal
import subprocess
import tempfile
import unittest
import urllib.request

from sluice_harness import BIN, Sluice, free_port
from test_lmtp import FakeLmtp

STORE = 'store { maildir = "var/mail/{domain}/{user}" }'

# The issue's config: subdomains are accepted, the only store is for example.test itself, and
# a DMARC rule without recipients matches everyone (so sub.example.test is not "unknown").
ISSUE_DOMAINS = ("example.test", ".example.test")
ISSUE_RULES = """
rule_set "main" {
  rule { name = "dmarc", actions = { bounce_on_dmarc_fail {} } },
  rule { name = "inbox", recipients = { "example.test" }, actions = { %s } },
}
""" % STORE

# Delivery only for an authenticated sender (SPF is not computed here: the condition fails), and
# one mailbox that is always stored.
CONDITIONAL_RULES = """
rule_set "main" {
  rule { name = "keep", recipients = { "keep@example.test" }, actions = { %s } },
  rule { name = "authenticated", recipients = { "example.test" }, when = { spf = "PASS" },
         actions = { %s } },
}
""" % (STORE, STORE)

BODY = b"Subject: t\r\nFrom: <a@example.net>\r\n\r\nbody\r\n"


def transaction(s, rcpts, body=BODY, sender="a@example.net"):
    """One SMTP transaction: ({rcpt: (code, text)} of every RCPT, the DATA reply or None when
    no recipient was accepted)."""
    c = s.raw()
    c.expect(220)
    c.expect(250, "EHLO client.example.net\r\n")
    c.expect(250, "MAIL FROM:<%s>\r\n" % sender)
    answers = {}
    for r in rcpts:
        c.send("RCPT TO:<%s>\r\n" % r)
        answers[r] = c.reply()
    data = None
    if any(code == 250 for code, _ in answers.values()):
        c.expect(354, "DATA\r\n")
        c.send(body + b".\r\n")
        data = c.reply()
    c.send("QUIT\r\n")
    return answers, data


class Base(unittest.TestCase):
    rules = ISSUE_RULES
    domains = ISSUE_DOMAINS
    policy = None  # server.undelivered; None: the default

    def setUp(self):
        self.metrics_port = free_port()
        extra = 'metrics = "127.0.0.1:%d",' % self.metrics_port
        if self.policy:
            extra += '\n  undelivered = "%s",' % self.policy
        self.sluice = Sluice(rules=self.rules, domains=self.domains, server_extra=extra,
                             tls=False).start()
        self.addCleanup(self.sluice.stop)

    def metric(self, series):
        url = "http://127.0.0.1:%d/metrics" % self.metrics_port
        with urllib.request.urlopen(url, timeout=10) as r:
            text = r.read().decode()
        m = re.search(r"^%s (\S+)$" % re.escape(series), text, re.M)
        self.assertIsNotNone(m, series + " not in:\n" + text)
        return float(m.group(1))

    def undelivered_count(self):
        return self.metric('sluice_recipients_undelivered_total{rule_set="main"}')

    def stored(self, domain, user):
        return self.sluice.maildir(domain, user)


class IssueScenarioDefault(Base):
    """The default policy, reject: refused at RCPT, nothing acknowledged."""

    def test_subdomain_user_refused_at_rcpt_example_test_user_stored(self):
        answers, data = transaction(self.sluice, ["dave@sub.example.test", "user@example.test"])
        code, text = answers["dave@sub.example.test"]
        self.assertEqual(code, 550, text)
        self.assertIn("5.1.1 <dave@sub.example.test>: no rule delivers mail for this recipient",
                      text)
        self.assertEqual(answers["user@example.test"][0], 250)
        self.assertEqual(data[0], 250, data)
        self.assertEqual(len(self.stored("example.test", "user")), 1)
        self.assertEqual(self.stored("sub.example.test", "dave"), [])
        self.sluice.wait_log(r"recipient qid=\S+ client=127\.0\.0\.1 rcpt=dave@sub\.example\.test "
                             r"result=undelivered policy=reject reply=")
        self.assertEqual(self.undelivered_count(), 1)
        self.assertEqual(
            self.metric('sluice_smtp_recipients_rejected_total{reason="undelivered"}'), 1)
        # The message line of the accepted message does not list anyone as undelivered.
        log = self.sluice.read_log()
        line = [l for l in log.splitlines() if " message " in l and "user@example.test" in l]
        self.assertEqual(len(line), 1, log)
        self.assertNotIn("undelivered=", line[0])

    def test_unknown_user_stays_unknown(self):
        # A domain no rule matches at all is still relaying denied / unknown, not undelivered.
        answers, _ = transaction(self.sluice, ["x@elsewhere.example"])
        self.assertEqual(answers["x@elsewhere.example"][0], 550)
        self.assertIn("5.7.1", answers["x@elsewhere.example"][1])
        self.assertEqual(self.undelivered_count(), 0)


class IssueScenarioTempfail(Base):
    policy = "tempfail"

    def test_subdomain_user_deferred_at_rcpt(self):
        answers, data = transaction(self.sluice, ["dave@sub.example.test", "user@example.test"])
        code, text = answers["dave@sub.example.test"]
        self.assertEqual(code, 451, text)
        self.assertIn("4.3.0 <dave@sub.example.test>: no rule delivers mail for this recipient, "
                      "try again later", text)
        self.assertEqual(data[0], 250, data)
        self.assertEqual(len(self.stored("example.test", "user")), 1)
        self.sluice.wait_log(r"rcpt=dave@sub\.example\.test result=undelivered policy=tempfail")
        self.assertEqual(self.undelivered_count(), 1)


class IssueScenarioAccept(Base):
    policy = "accept"

    def test_subdomain_user_accepted_kept_nowhere_but_logged_and_counted(self):
        answers, data = transaction(self.sluice, ["dave@sub.example.test"])
        self.assertEqual(answers["dave@sub.example.test"][0], 250)
        self.assertEqual(data[0], 250, data)
        self.assertEqual(self.sluice.all_stored(), [])
        self.sluice.wait_log(r"recipient qid=\S+ rcpt=dave@sub\.example\.test result=undelivered "
                             r"policy=accept reply=\"accepted, kept nowhere\"")
        self.sluice.wait_log(r"message qid=.* undelivered=dave@sub\.example\.test")
        self.assertEqual(self.undelivered_count(), 1)
        # Not a refusal at RCPT.
        self.assertEqual(
            self.metric('sluice_smtp_recipients_rejected_total{reason="undelivered"}'), 0)


class PolicyReload(Base):
    policy = "accept"

    def test_a_reload_changes_the_policy(self):
        answers, _ = transaction(self.sluice, ["dave@sub.example.test"])
        self.assertEqual(answers["dave@sub.example.test"][0], 250)
        with open(self.sluice.config_path) as f:
            text = f.read()
        self.sluice.write_config(text.replace('undelivered = "accept"', 'undelivered = "reject"'))
        start = len(self.sluice.read_log())
        self.sluice.signal(signal.SIGHUP)
        self.sluice.wait_log(r"config reloaded", start=start)
        answers, data = transaction(self.sluice, ["dave@sub.example.test"])
        self.assertEqual(answers["dave@sub.example.test"][0], 550)
        self.assertIsNone(data)
        self.assertEqual(self.undelivered_count(), 2)


class ConditionsExcludeDefault(Base):
    """RCPT cannot know the conditions: the end of DATA finds the recipient undelivered."""
    rules = CONDITIONAL_RULES
    domains = ("example.test",)

    def test_only_recipient_refused_in_reply_to_data(self):
        answers, data = transaction(self.sluice, ["user@example.test"])
        self.assertEqual(answers["user@example.test"][0], 250)
        self.assertEqual(data[0], 550, data)
        self.assertIn("5.1.1 <user@example.test>: no rule delivers mail for this recipient",
                      data[1])
        self.assertEqual(self.sluice.all_stored(), [])
        self.sluice.wait_log(r"recipient qid=\S+ rcpt=user@example\.test result=undelivered "
                             r"policy=reject reply=\"550 5\.1\.1")
        self.sluice.wait_log(r"message qid=.* undelivered=user@example\.test")
        self.assertEqual(self.undelivered_count(), 1)

    def test_with_a_delivered_recipient_the_other_is_refused_like_a_bounce(self):
        answers, data = transaction(self.sluice, ["user@example.test", "keep@example.test"])
        self.assertEqual(data[0], 250, data)
        self.assertEqual(len(self.stored("example.test", "keep")), 1)
        self.assertEqual(self.stored("example.test", "user"), [])
        # The partial-refusal path: the bounce line says what became of the DSN.
        self.sluice.wait_log(r"bounce qid=\S+ rcpt=user@example\.test reply=\"550 5\.1\.1 "
                             r"<user@example\.test>: no rule delivers mail for this recipient\" "
                             r"dsn=")
        self.sluice.wait_log(r"rcpt=user@example\.test result=undelivered policy=reject")
        self.assertEqual(self.undelivered_count(), 1)


class ConditionsExcludeTempfail(Base):
    rules = CONDITIONAL_RULES
    domains = ("example.test",)
    policy = "tempfail"

    def test_whole_message_deferred_and_the_other_copy_taken_back(self):
        answers, data = transaction(self.sluice, ["user@example.test", "keep@example.test"])
        self.assertEqual(data[0], 451, data)
        self.assertIn("4.3.0 <user@example.test>: no rule delivers mail for this recipient, "
                      "try again later", data[1])
        # Nothing kept, not even keep@'s copy: the retry must not deliver it twice.
        self.assertEqual(self.sluice.all_stored(), [])
        self.sluice.wait_log(r"rcpt=user@example\.test result=undelivered policy=tempfail "
                             r"reply=\"451 4\.3\.0")
        self.assertEqual(self.undelivered_count(), 1)


class ConditionsExcludeAccept(Base):
    rules = CONDITIONAL_RULES
    domains = ("example.test",)
    policy = "accept"

    def test_accepted_logged_and_counted(self):
        answers, data = transaction(self.sluice, ["user@example.test", "keep@example.test"])
        self.assertEqual(data[0], 250, data)
        self.assertEqual(len(self.stored("example.test", "keep")), 1)
        self.assertEqual(self.stored("example.test", "user"), [])
        self.sluice.wait_log(r"rcpt=user@example\.test result=undelivered policy=accept")
        self.sluice.wait_log(r"message qid=.* undelivered=user@example\.test")
        self.assertNotIn("bounce qid=", self.sluice.read_log())
        self.assertEqual(self.undelivered_count(), 1)


class ExplicitDrop(Base):
    rules = """
rule_set "main" {
  rule { name = "discard", recipients = { "junk@example.test" }, actions = { drop {} } },
  rule { name = "notify", recipients = { "notify@example.test" },
         actions = { webhook { url = "http://127.0.0.1:9/hook" }, drop {} } },
  rule { name = "inbox", recipients = { "user@example.test" }, actions = { %s } },
}
""" % STORE
    domains = ("example.test",)

    def test_drop_is_a_choice_not_undelivered(self):
        answers, data = transaction(self.sluice, ["junk@example.test", "notify@example.test"])
        self.assertEqual([a[0] for a in answers.values()], [250, 250])
        self.assertEqual(data[0], 250, data)
        self.assertEqual(self.sluice.all_stored(), [])
        self.sluice.wait_log(r"message qid=.*to=junk@example\.test,notify@example\.test")
        self.assertNotIn("undelivered", self.sluice.read_log())
        self.assertEqual(self.undelivered_count(), 0)


class LmtpDeliveredThenTempfail(Base):
    """tempfail cannot defer the message once an LMTP copy is in a mailbox (the retry would put
    a second one there): the undelivered recipient is refused as with reject."""
    domains = ("example.test",)
    policy = "tempfail"

    def setUp(self):
        def behave(c, f):
            c.sendall(b"220 fake ready\r\n")
            nrcpt = 0
            while True:
                line = f.readline().upper()
                if not line:
                    return
                if line.startswith(b"LHLO"):
                    c.sendall(b"250-fake\r\n250 PIPELINING\r\n")
                elif line.startswith(b"MAIL"):
                    nrcpt = 0
                    c.sendall(b"250 2.1.0 ok\r\n")
                elif line.startswith(b"RCPT"):
                    nrcpt += 1
                    c.sendall(b"250 2.1.5 ok\r\n")
                elif line.startswith(b"DATA"):
                    c.sendall(b"354 go on\r\n")
                    while f.readline() not in (b".\r\n", b""):
                        pass
                    c.sendall(b"250 2.0.0 delivered\r\n" * nrcpt)
                elif line.startswith(b"QUIT"):
                    c.sendall(b"221 bye\r\n")
                    return
                else:
                    c.sendall(b"250 ok\r\n")
        self.fake = FakeLmtp(behave)
        self.addCleanup(self.fake.close)
        self.rules = """
rule_set "main" {
  rule { name = "mailbox", recipients = { "box@example.test" },
         actions = { lmtp { address = "127.0.0.1:%d" } } },
  rule { name = "authenticated", recipients = { "user@example.test" }, when = { spf = "PASS" },
         actions = { %s } },
}
""" % (self.fake.port, STORE)
        super().setUp()

    def test_refused_instead_of_deferred(self):
        answers, data = transaction(self.sluice, ["box@example.test", "user@example.test"])
        self.assertEqual(data[0], 250, data)
        self.sluice.wait_log(r"bounce qid=\S+ rcpt=user@example\.test reply=\"550 5\.1\.1 "
                             r"<user@example\.test>: no rule delivers")
        self.sluice.wait_log(r"rcpt=user@example\.test result=undelivered policy=tempfail "
                             r"reply=\"550 5\.1\.1")
        self.assertEqual(self.undelivered_count(), 1)


def write_config(text):
    d = tempfile.mkdtemp(prefix="sluice-undelivered-")
    path = os.path.join(d, "sluice.lua")
    with open(path, "w") as f:
        f.write(text)
    return d, path


SERVER = """server {
  listen = { "127.0.0.1:2599" },
  hostname = "mx.example.test",
  domains = { %s },
  auth_checks = false,%s
}
"""
DELIVERS = ("store, bounce, replace_recipient, relay, s3, lua, dmarc_report_ingest, lmtp")


class Check(unittest.TestCase):
    def check(self, text):
        d, path = write_config(text)
        r = subprocess.run([BIN, "check", "-c", path], capture_output=True, text=True, cwd=d)
        return path, r

    def test_issue_config_warns_and_exits_0(self):
        path, r = self.check(SERVER % ('"example.test", ".example.test"', "") + ISSUE_RULES)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(": OK", r.stdout)
        self.assertEqual(
            r.stderr,
            '%s:1: warning: recipients in any subdomain of example.test (domains: '
            '".example.test") reach no rule that delivers (%s) or drops: they are refused '
            'with 550 5.1.1 (server.undelivered = "reject")\n' % (path, DELIVERS))

    def test_rule_recipient_classes_and_the_policy_named(self):
        rules = """rule_set "main" {
  rule { name = "inbox", recipients = { "example.test" }, actions = { %s } },
  rule { name = "alerts", recipients = { "alerts.example.test", "ops@example.test" },
         actions = { webhook { url = "http://127.0.0.1:9/" } } },
  rule { name = "off", enabled = false, recipients = { "off.example.test" }, actions = { stop {} } },
  rule { name = "nowhere", recipients = { "x@other.example" }, actions = { stop {} } },
}
""" % STORE
        path, r = self.check(SERVER % ('"example.test", ".example.test"',
                                       '\n  undelivered = "accept",') + rules)
        self.assertEqual(r.returncode, 0, r.stderr)
        # ops@ is covered by the inbox rule; off.example.test (disabled) and other.example
        # (not accepted: sluice check's own warning says so, first) are not examined; no rule
        # covers every subdomain.
        self.assertEqual(r.stderr.splitlines(), [
            "%s:13: warning: rule 'nowhere': recipient 'x@other.example' is in no domain of "
            "server.domains: RCPT refuses it (550 5.7.1), so this never matches" % path,
            '%s:1: warning: recipients in any subdomain of example.test (domains: '
            '".example.test") match no rule: they are refused as unknown users (550 5.1.1)'
            % path,
            '%s:10: warning: recipients in alerts.example.test (rule "alerts") reach no rule '
            'that delivers (%s) or drops: they are accepted and kept nowhere '
            '(server.undelivered = "accept")' % (path, DELIVERS)])

    def test_several_rule_sets_named_and_other_tenants_left_alone(self):
        rules = """rule_set "alpha" {
  rule { name = "a", recipients = { "alpha.example" }, actions = { %s } },
}
rule_set "beta" {
  rule { name = "dmarc", actions = { bounce_on_dmarc_fail {} } },
  rule { name = "b", recipients = { "beta.example" }, actions = { %s } },
}
""" % (STORE, STORE)
        text = SERVER % ('"alpha.example", "beta.example"', '\n  rule_set = "alpha",') + rules
        path, r = self.check(text)
        self.assertEqual(r.returncode, 0, r.stderr)
        # alpha does not cover beta.example at all (another tenant's); beta's DMARC rule takes
        # alpha.example's recipients and keeps them nowhere.
        self.assertEqual(r.stderr.splitlines(), [
            '%s:1: warning: rule set "beta": recipients in alpha.example (domains: '
            '"alpha.example") reach no rule that delivers (%s) or drops: they are refused with '
            '550 5.1.1 (server.undelivered = "reject")' % (path, DELIVERS)])

    def test_domain_no_rule_matches(self):
        path, r = self.check(SERVER % ('"example.test", "spare.example"', "") + """
rule_set "main" { rule { name = "inbox", recipients = { "example.test" }, actions = { %s } } }
""" % STORE)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(
            r.stderr,
            '%s:1: warning: recipients in spare.example (domains: "spare.example") match no rule: '
            'they are refused as unknown users (550 5.1.1)\n' % path)

    def test_delivering_config_has_no_warning(self):
        path, r = self.check(SERVER % ('"example.test"', '\n  undelivered = "tempfail",') + """
rule_set "main" {
  rule { name = "dmarc", actions = { bounce_on_dmarc_fail {} } },
  rule { name = "junk", recipients = { "junk@example.test" }, actions = { drop {} } },
  rule { name = "inbox", actions = { %s } },
}
""" % STORE)
        self.assertEqual((r.returncode, r.stderr), (0, ""))

    def test_bad_policy_is_an_error_at_its_line(self):
        text = SERVER % ('"example.test"', '\n  undelivered = "discard",') + ISSUE_RULES
        path, r = self.check(text)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr.strip(),
                         '%s:1: server: undelivered must be "reject", "tempfail" or "accept", '
                         'got "discard"' % path)
        d, path = write_config(text)
        r = subprocess.run([BIN, "serve", "-c", path], capture_output=True, text=True, cwd=d,
                           timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertIn('%s:1: server: undelivered must be' % path, r.stderr)


class TestTrace(unittest.TestCase):
    """`sluice test` shows the undelivered outcome, at RCPT and after the chain."""

    def run_test(self, rules, rcpts, verdicts=None, domains='"example.test", ".example.test"',
                 json_out=False):
        d, path = write_config(SERVER % (domains, "") + rules)
        msg = os.path.join(d, "m.eml")
        with open(msg, "wb") as f:
            f.write(BODY)
        args = [BIN, "test", "-c", path, "--from", "a@example.net"]
        for r in rcpts:
            args += ["--to", r]
        if verdicts:
            args += ["--verdicts", verdicts]
        if json_out:
            args.append("--json")
        r = subprocess.run(args + [msg], capture_output=True, text=True, cwd=d)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout) if json_out else r.stdout

    def test_rcpt_refusal_shown(self):
        out = self.run_test(ISSUE_RULES, ["dave@sub.example.test", "user@example.test"])
        self.assertIn("RCPT TO:<dave@sub.example.test>: 550 5.1.1 <dave@sub.example.test>: "
                      "no rule delivers mail for this recipient\n", out)
        self.assertIn("recipient user@example.test: delivered\n", out)
        self.assertIn("reply to DATA: 250 ", out)

    def test_conditions_excluded_outcome_shown(self):
        out = self.run_test(CONDITIONAL_RULES, ["user@example.test"], domains='"example.test"',
                            verdicts="spf=FAIL,dkim=FAIL,dmarc=FAIL")
        self.assertIn('recipient user@example.test: undelivered (no rule delivered, refused or '
                      'dropped it; server.undelivered = "reject"): 550 5.1.1 <user@example.test>: '
                      'no rule delivers mail for this recipient\n', out)
        self.assertIn("reply to DATA: 550 5.1.1 <user@example.test>", out)
        j = self.run_test(CONDITIONAL_RULES, ["user@example.test", "keep@example.test"],
                          domains='"example.test"', verdicts="spf=FAIL,dkim=FAIL,dmarc=FAIL",
                          json_out=True)
        self.assertEqual([(o["address"], o["outcome"]) for o in j["outcomes"]],
                         [("user@example.test", "undelivered"), ("keep@example.test", "delivered")])
        self.assertEqual(j["outcomes"][0]["policy"], "reject")
        self.assertTrue(j["reply"].startswith("250 "), j["reply"])

    def test_quarantine_actions_deliver(self):
        rules = """rule_set "main" {
  rule { name = "dmarc", actions = { bounce_on_dmarc_fail { quarantine = { %s, stop {} } } } },
  rule { name = "inbox", when = { spf = "PASS" }, actions = { %s } },
}
""" % (STORE, STORE)
        j = self.run_test(rules, ["user@example.test"], domains='"example.test"', json_out=True,
                          verdicts="spf=FAIL,dkim=FAIL,dmarc=FAIL,dmarc_policy=QUARANTINE")
        self.assertEqual(j["outcomes"][0]["outcome"], "delivered")
        self.assertTrue(j["reply"].startswith("250 "), j["reply"])
        j = self.run_test(rules, ["user@example.test"], domains='"example.test"', json_out=True,
                          verdicts="spf=FAIL,dkim=FAIL,dmarc=FAIL,dmarc_policy=REJECT")
        self.assertEqual(j["outcomes"][0]["outcome"], "refused")
        self.assertTrue(j["reply"].startswith("550 5.7.1"), j["reply"])
        j = self.run_test(rules, ["user@example.test"], domains='"example.test"', json_out=True,
                          verdicts="spf=FAIL,dkim=FAIL,dmarc=PASS")
        self.assertEqual(j["outcomes"][0]["outcome"], "undelivered")
        self.assertTrue(j["reply"].startswith("550 5.1.1"), j["reply"])


if __name__ == "__main__":
    unittest.main()
