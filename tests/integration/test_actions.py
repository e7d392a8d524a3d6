"""Actions beyond store, through real SMTP sessions: bounce in the session (the reply to DATA
is the bounce, no backscatter), partial bounces, drop, and bounce_on_dmarc_fail's wiring."""
import grp
import os
import re
import shutil
import stat
import subprocess
import tempfile
import unittest

from sluice_harness import BIN, SluiceTestCase, read_file
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
            # Nested lists run in the session: a post-acceptance action there used to crash.
            ('bounce_on_dmarc_fail { quarantine = { webhook { url = "http://127.0.0.1:9/" } } }',
             "quarantine item 1: webhook runs after acceptance, from the spool, and cannot be in "
             "a nested list"),
            ('bounce_on_dmarc_fail { quarantine = { stop {}, relay { to = "127.0.0.1:25" } } }',
             "quarantine item 2: relay runs after acceptance"),
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


class StorePermissions(SluiceTestCase):
    """store { mode, dir_mode, group }: an IMAP server running as another user (Dovecot as
    vmail, in group mail) can read what sluice delivers, and nobody else can."""
    rules = """
rule_set "main" {
  rule { name = "shared", recipients = { "shared@example.test" },
         actions = { store { maildir = "var/mail/{domain}/{user}", mode = "0640",
                             dir_mode = "0750", group = "mail" }, stop {} } },
  rule { name = "private", actions = { %s } },
}
""" % STORE

    def mode(self, path):
        return stat.S_IMODE(os.stat(path).st_mode)

    def test_files_and_new_directories_get_the_mode_and_group(self):
        old = os.umask(0o077)  # sluice inherits it: the modes must not depend on it
        try:
            self.sluice.stop()
            self.sluice.start()
        finally:
            os.umask(old)
        code, _ = transaction(self.sluice, ["shared@example.test"], b"Subject: s\r\n\r\nx\r\n")
        self.assertEqual(code, 250)
        (path,) = self.sluice.maildir("example.test", "shared")
        mail = grp.getgrnam("mail").gr_gid
        self.assertEqual((self.mode(path), os.stat(path).st_gid), (0o640, mail))
        root = os.path.join(self.sluice.dir, "var", "mail", "example.test", "shared")
        for d in (root, *(os.path.join(root, sub) for sub in ("new", "cur", "tmp"))):
            self.assertEqual((self.mode(d), os.stat(d).st_gid), (0o750, mail), d)

    def test_default_stays_private(self):
        code, _ = transaction(self.sluice, ["alice@example.test"], b"Subject: p\r\n\r\nx\r\n")
        self.assertEqual(code, 250)
        (path,) = self.sluice.maildir("example.test", "alice")
        self.assertEqual(self.mode(path), 0o600)
        self.assertEqual(self.mode(os.path.dirname(path)), 0o700)

    def test_check_describes_the_permissions(self):
        r = self.sluice.run_cli("check", "-c", self.sluice.config_path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("maildir=var/mail/{domain}/{user} mode=0640 dir_mode=0750 group=mail",
                      r.stdout)


class StorePermissionErrors(unittest.TestCase):
    def test_bad_modes_and_groups(self):
        assert_action_errors(self, (
            ('store { maildir = "m", mode = "0999" }',
             'store: mode must be an octal mode such as "0640", got "0999"'),
            ('store { maildir = "m", mode = "rw-r-----" }', "must be an octal mode"),
            ('store { maildir = "m", mode = "01640" }', "must be an octal mode"),
            ('store { maildir = "m", mode = 640 }', "field 'mode' must be a string"),
            ('store { maildir = "m", mode = "0440" }',
             'mode "0440" must give the owner rw (0600) and nobody else write access'),
            ('store { maildir = "m", mode = "0646" }', "nobody else write access"),
            ('store { maildir = "m", dir_mode = "0640" }',
             'dir_mode "0640" must give the owner rwx (0700)'),
            ('store { maildir = "m", group = "no-such-group-here" }',
             'group "no-such-group-here" does not exist'),
            ('store { maildir = "m", owner = "mail" }', "unknown key 'owner'")))

    @unittest.skipUnless(os.geteuid() == 0 and shutil.which("setpriv"),
                         "needs root to run sluice check as another user")
    def test_a_group_sluice_is_not_in_is_refused_at_load(self):
        d = tempfile.mkdtemp(prefix="sluice-perm-")
        self.addCleanup(shutil.rmtree, d, True)
        os.chmod(d, 0o755)
        conf = os.path.join(d, "sluice.lua")
        with open(conf, "w") as f:
            f.write('server { listen = { "127.0.0.1:2599" }, domains = { "example.test" } }\n'
                    'rule_set "main" { rule { name = "r", actions = {\n'
                    'store { maildir = "m", group = "mail" } } } }\n')
        os.chmod(conf, 0o644)
        r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                            os.path.abspath(BIN), "check", "-c", conf],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn(conf + ':3: store: group "mail" is not one of this process\'s groups '
                      "(uid 65534): files could not be given to it", r.stderr)


if __name__ == "__main__":
    unittest.main()
