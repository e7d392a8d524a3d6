"""Actions beyond store, through real SMTP sessions: bounce in the session (the reply to DATA
is the bounce, no backscatter), partial bounces, drop, and bounce_on_dmarc_fail's wiring."""
import re
import subprocess
import unittest

from sluice_harness import SluiceTestCase, read_file
from test_config import assert_action_errors, check

STORE = 'store { maildir = "var/mail/{domain}/{user}" }'


def transaction(sluice, rcpts, body):
    c = sluice.raw()
    c.expect(220)
    c.expect(250, "EHLO client.example.net\r\n")
    c.expect(250, "MAIL FROM:<a@example.net>\r\n")
    for r in rcpts:
        c.expect(250, "RCPT TO:<%s>\r\n" % r)
    c.expect(354, "DATA\r\n")
    c.send(body + b".\r\n")
    reply = c.reply()
    c.expect(221, "QUIT\r\n")
    return reply


class Bounce(SluiceTestCase):
    rules = """
rule_set "main" {
  rule { name = "store-first", recipients = { "early@example.test" }, actions = { %(s)s } },
  rule { name = "no-invoices", when = { subject = { contains = "invoice" } },
         actions = { bounce { smtp_reply_code = "554", status_code = "5.7.1",
                              message = "Invoices go to billing@example.test" } } },
  rule { name = "later", when = { subject = { contains = "later" } },
         actions = { bounce { smtp_reply_code = "451", status_code = "4.7.1",
                              message = "Try again later" }, stop {} } },
  rule { name = "only-bob", recipients = { "bob@example.test" },
         when = { subject = { contains = "bob-bounce" } },
         actions = { bounce { message = "Bob does not want this" } } },
  rule { name = "quiet", recipients = { "quiet@example.test" }, actions = { drop {} } },
  rule { name = "store", actions = { %(s)s } },
}
""" % {"s": STORE}

    def test_all_recipients_bounced_means_the_data_reply_is_the_bounce(self):
        code, text = transaction(self.sluice, ["alice@example.test", "bob@example.test"],
                                 b"Subject: your invoice\r\n\r\npay\r\n")
        self.assertEqual(code, 554)
        self.assertEqual(text, "554 5.7.1 Invoices go to billing@example.test")
        self.assertEqual(self.sluice.all_stored(), [])

    def test_temporary_bounce(self):
        code, text = transaction(self.sluice, ["alice@example.test"],
                                 b"Subject: later please\r\n\r\nx\r\n")
        self.assertEqual((code, text), (451, "451 4.7.1 Try again later"))
        self.assertEqual(self.sluice.all_stored(), [])

    def test_copies_staged_before_the_bounce_are_taken_back(self):
        code, text = transaction(self.sluice, ["early@example.test"],
                                 b"Subject: invoice\r\n\r\nx\r\n")
        self.assertEqual(code, 554)
        self.assertEqual(self.sluice.all_stored(), [])

    def test_partial_bounce_accepts_the_rest_and_logs_the_refusal(self):
        code, text = transaction(self.sluice, ["alice@example.test", "bob@example.test"],
                                 b"Subject: bob-bounce\r\n\r\nx\r\n")
        self.assertEqual(code, 250)
        self.assertEqual(len(self.sluice.maildir("example.test", "alice")), 1)
        self.assertEqual(self.sluice.maildir("example.test", "bob"), [])
        self.sluice.wait_log(r"bounce .*rcpt=bob@example.test .*dsn=\"not sent: sender not authenticated")

    def test_drop_accepts_silently(self):
        code, _ = transaction(self.sluice, ["quiet@example.test", "alice@example.test"],
                              b"Subject: hi\r\n\r\nx\r\n")
        self.assertEqual(code, 250)
        self.assertEqual(self.sluice.maildir("example.test", "quiet"), [])
        self.assertEqual(len(self.sluice.maildir("example.test", "alice")), 1)
        code, _ = transaction(self.sluice, ["quiet@example.test"], b"Subject: hi\r\n\r\nx\r\n")
        self.assertEqual(code, 250)
        self.assertEqual(self.sluice.maildir("example.test", "quiet"), [])


class ReplaceRecipient(SluiceTestCase):
    rules = """
rule_set "main" {
  rule { name = "archive", recipients = { "legal@example.test" }, actions = {
           add_header { name = "X-Was", value = "legal" },
           replace_recipient { with = { "archive@example.test", "audit@example.test" } },
           store { maildir = "var/mail/{domain}/{user}" } } },
  rule { name = "audit-tag", recipients = { "audit@example.test" }, actions = {
           add_header { name = "X-Audit", value = "yes" } } },
  rule { name = "rest", recipients = { "user@example.test" }, actions = { %s } },
}
""" % STORE

    def test_later_actions_and_rules_see_the_new_recipients(self):
        code, _ = transaction(self.sluice, ["legal@example.test", "user@example.test"],
                              b"Subject: contract\r\n\r\nx\r\n")
        self.assertEqual(code, 250)
        self.assertEqual(self.sluice.maildir("example.test", "legal"), [])
        archive = self.sluice.maildir("example.test", "archive")
        audit = self.sluice.maildir("example.test", "audit")
        self.assertEqual((len(archive), len(audit)), (1, 1))
        self.assertIn(b"for <archive@example.test>", read_file(archive[0]))
        self.assertIn(b"X-Was: legal", read_file(audit[0]))
        self.assertEqual(len(self.sluice.maildir("example.test", "user")), 1)
        self.sluice.wait_log(r"rules=archive,audit-tag,rest ")


class DmarcBounceWithoutVerdicts(SluiceTestCase):
    """With authentication checks off there is no DMARC verdict: the action must let mail
    through (it only ever bounces FAIL+REJECT)."""
    server_extra = "auth_checks = false,"
    rules = """
rule_set "main" {
  rule { name = "dmarc", actions = { bounce_on_dmarc_fail {
           quarantine = { add_header { name = "X-Quarantine", value = "yes" } } } } },
  rule { name = "store", actions = { %s } },
}
""" % STORE

    def test_no_verdict_no_bounce(self):
        code, _ = transaction(self.sluice, ["alice@example.test"], b"Subject: x\r\n\r\nx\r\n")
        self.assertEqual(code, 250)
        data = read_file(self.sluice.maildir("example.test", "alice")[0])
        self.assertNotIn(b"X-Quarantine", data)


class BounceConfigErrors(unittest.TestCase):
    SERVER = ('server { listen = { "127.0.0.1:2599" }, domains = { "example.test" } }\n'
              'rule_set "main" { rule { name = "r", actions = {\n')

    def test_codes_are_validated(self):
        assert_action_errors(self, (
            ('bounce { smtp_reply_code = "250" }', "must be 4xx or 5xx"),
            ('bounce { status_code = "5.7" }', "must look like 5.7.1"),
            ('bounce { smtp_reply_code = "550", status_code = "4.7.1" }', "disagree on the class"),
            ('bounce { message = "a\\r\\n250 ok" }', "one line"),
            ('bounce { reply = "550" }', "unknown key 'reply'"),
            ('bounce { sender = "nobody" }', "not a valid address"),
            ('bounce_on_dmarc_fail { quarantine = { "store" } }',
             "quarantine item 1 is not an action"),
            ('drop { now = true }', "unknown key"),
            ('replace_recipient { with = { "nobody" } }', "not a valid address"),
            ('replace_recipient { with = { } }', "at least one")))

    def test_check_describes_nested_quarantine(self):
        path, r = check(self.SERVER + 'bounce_on_dmarc_fail { quarantine = {\n'
                        ' add_header { name = "X-Q", value = "1" },\n'
                        ' store { maildir = "var/junk/{user}" } } }\n} } }\n')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("reject=\"550 5.7.1 Unauthenticated email is not accepted due to the "
                      "sending domain's DMARC policy.\" quarantine=[add_header X-Q: 1, store "
                      "maildir=var/junk/{user}]", r.stdout)


if __name__ == "__main__":
    unittest.main()
