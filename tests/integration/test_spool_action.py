"""Issue 23: a spooled job carries its action. Jobs accepted while their target was failing
are delivered exactly once after the config was edited (the webhook moved into another rule,
the rules reordered, the rule renamed, the webhook's URL and secret changed, the rule deleted)
and reloaded or restarted; relay and async Lua jobs likewise. The job file is version 2 with
an "action" object, private to sluice's user."""
import glob
import hashlib
import hmac
import json
import os
import re
import signal
import smtplib
import stat
import time
import unittest
import urllib.request

from sluice_harness import Sluice, free_port, read_file, wait_for
from webhook_sink import WebhookSink

SERVER_EXTRA = 'retry_initial_ms = 100, retry_max_ms = 300, metrics = "127.0.0.1:%d",'

# Rule "notify" posts every message to the webhook (secret "old-secret"); "archive" stores.
BEFORE = """
rule_set "main" {
  rule { name = "notify", recipients = { "example.test" }, actions = {
    add_header { name = "X-Notified", value = "yes" },
    webhook { url = "%s", content = "headers", secret = "old-secret" },
  } },
  rule { name = "archive", recipients = { "example.test" }, actions = {
    store { maildir = "var/mail/{domain}/{user}" },
  } },
}
"""

# The same webhook, moved to the end of another rule that now comes first; "notify" is
# renamed "tag" and has no webhook any more.
MOVED = """
rule_set "main" {
  rule { name = "archive", recipients = { "example.test" }, actions = {
    store { maildir = "var/mail/{domain}/{user}" },
    webhook { url = "%s", content = "headers", secret = "old-secret" },
  } },
  rule { name = "tag", recipients = { "example.test" }, actions = {
    add_header { name = "X-Notified", value = "yes" },
  } },
}
"""

# The webhook now points elsewhere, with another secret, in a rule of another name.
CHANGED = """
rule_set "main" {
  rule { name = "hooks", recipients = { "example.test" }, actions = {
    webhook { url = "%s", content = "headers", secret = "new-secret" },
  } },
  rule { name = "archive", recipients = { "example.test" }, actions = {
    store { maildir = "var/mail/{domain}/{user}" },
  } },
}
"""

# No post-acceptance action at all.
STORE_ONLY = """
rule_set "main" {
  rule { name = "archive", recipients = { "example.test" }, actions = {
    store { maildir = "var/mail/{domain}/{user}" },
  } },
}
"""


def message(n):
    return ("From: alice@example.net\r\nTo: user@example.test\r\nSubject: job %d\r\n"
            "Message-ID: <job-%d@example.net>\r\n\r\nbody %d\r\n" % (n, n, n)).encode()


def send(s, n):
    with smtplib.SMTP("127.0.0.1", s.port, timeout=10) as c:
        c.sendmail("alice@example.net", ["user@example.test"], message(n))


def set_rules(s, rules):
    with open(s.config_path) as f:
        text = f.read()
    s.write_config(re.sub(r'rule_set "main".*', lambda m: rules, text, flags=re.S))


def reload(s, rules):
    set_rules(s, rules)
    start = len(s.read_log())
    s.signal(signal.SIGHUP)
    s.wait_log(r"config reloaded", start=start)
    return start


def job_files(s):
    return sorted(glob.glob(os.path.join(s.dir, "var", "spool", "jobs", "*.job")))


def message_ids(sink):
    return sorted(n["mail"]["commonHeaders"]["messageId"] for _h, n in sink.notifications())


def metrics(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port) as r:
        return r.read().decode()


class WebhookJobs(unittest.TestCase):
    def setUp(self):
        self.sink = WebhookSink(always_fail=True).start()
        self.addCleanup(self.sink.stop)
        self.mport = free_port()
        self.s = Sluice(rules=BEFORE % self.sink.url, server_extra=SERVER_EXTRA % self.mport)
        self.s.start()
        self.addCleanup(self.s.stop)

    def accept_failing(self, count):
        """count messages accepted, each job's first attempt failed (HTTP 500)."""
        for n in range(count):
            send(self.s, n)
        self.assertTrue(wait_for(lambda: len(re.findall(
            r"rule=notify action=webhook attempts=1 outcome=retry", self.s.read_log())) == count),
            self.s.read_log())
        self.assertEqual(len(job_files(self.s)), count)

    def delivered_once(self, sink, count, secret):
        want = ["<job-%d@example.net>" % n for n in range(count)]
        self.assertTrue(wait_for(lambda: len(sink.requests) >= count), self.s.read_log())
        self.assertTrue(wait_for(lambda: job_files(self.s) == []), self.s.read_log())
        time.sleep(0.5)  # a second delivery of any of them would come within a retry or two
        self.assertEqual(message_ids(sink), want)
        for headers, body in sink.requests:
            self.assertEqual(headers["X-Sluice-Signature"],
                             "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest())
        self.assertNotIn("outcome=expired", self.s.read_log())

    def test_webhook_moved_rules_reordered_and_renamed_then_reload(self):
        self.accept_failing(3)
        start = reload(self.s, MOVED % self.sink.url)
        # Still retried under the new config, not expired because "notify" is gone.
        self.s.wait_log(r"rule=notify action=webhook attempts=\d+ outcome=retry", start=start)
        self.sink.always_fail = False
        self.delivered_once(self.sink, 3, b"old-secret")
        # Counted under the rule they were accepted by, which no longer exists.
        text = metrics(self.mport)
        self.assertIn('sluice_rule_publish_failure_total{rule_set="main",rule="notify"} 3', text)
        self.assertIn('sluice_rule_publish_expired_total{rule_set="main",rule="notify"} 0', text)

    def test_webhook_target_and_secret_changed_then_reload(self):
        self.accept_failing(3)
        other = WebhookSink().start()
        self.addCleanup(other.stop)
        reload(self.s, CHANGED % other.url)
        # A message accepted now goes where the config now says, signed with the new secret.
        send(self.s, 100)
        self.assertTrue(wait_for(lambda: len(other.requests) == 1), self.s.read_log())
        self.assertEqual(message_ids(other), ["<job-100@example.net>"])
        headers, body = other.requests[0]
        self.assertEqual(headers["X-Sluice-Signature"],
                         "sha256=" + hmac.new(b"new-secret", body, hashlib.sha256).hexdigest())
        # The jobs accepted before go where they were meant to, with the secret they had.
        self.sink.always_fail = False
        self.delivered_once(self.sink, 3, b"old-secret")
        self.assertEqual(len(other.requests), 1)

    def test_rule_deleted_and_restart(self):
        self.accept_failing(2)
        self.s.stop()
        set_rules(self.s, STORE_ONLY)
        offset = len(self.s.read_log())
        self.s.start()
        self.s.wait_log(r"spool: resuming 2 post-acceptance jobs", start=offset)
        self.s.wait_log(r"rule=notify action=webhook attempts=\d+ outcome=retry", start=offset)
        self.sink.always_fail = False
        self.delivered_once(self.sink, 2, b"old-secret")
        self.assertNotIn("no longer in the config", self.s.read_log())

    def test_rule_deleted_job_expires_on_its_own_expire_after(self):
        reload(self.s, BEFORE.replace('secret = "old-secret"',
                                      'secret = "old-secret", expire_after = "2s"')
               % self.sink.url)
        send(self.s, 0)
        self.s.wait_log(r"rule=notify action=webhook attempts=1 outcome=retry")
        reload(self.s, STORE_ONLY)
        self.s.wait_log(r"rule=notify action=webhook attempts=\d+ outcome=expired "
                        r"error=\"POST \S+: HTTP 500\"")
        self.assertNotIn("no longer in the config", self.s.read_log())
        self.assertTrue(wait_for(lambda: job_files(self.s) == []))
        self.assertIn('sluice_rule_publish_expired_total{rule_set="main",rule="notify"} 1',
                      metrics(self.mport))

    def test_job_file_carries_the_action_privately(self):
        send(self.s, 0)
        self.assertTrue(wait_for(lambda: len(job_files(self.s)) == 1))
        path = job_files(self.s)[0]
        with open(path) as f:
            job = json.load(f)
        self.assertEqual(job["version"], 2)
        self.assertEqual(job["action"], {
            "type": "webhook", "on_failure": "retry", "expire_after_ms": 4 * 3600 * 1000,
            "params": {"url": self.sink.url, "content": "headers", "secret": "old-secret"},
            "config_file": self.s.config_path})
        self.assertEqual((job["rule_set"], job["rule"], job["action_index"]),
                         ("main", "notify", 1))
        self.assertNotIn("action_type", job)
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        for d in ("spool", "spool/jobs", "spool/msg"):
            self.assertEqual(stat.S_IMODE(os.stat(os.path.join(self.s.dir, "var", d)).st_mode),
                             0o700, d)


class OpenSpoolDirs(unittest.TestCase):
    def test_spool_dirs_made_private_at_start(self):
        s = Sluice()
        jobs = os.path.join(s.dir, "var", "spool", "jobs")
        os.makedirs(jobs)
        os.chmod(os.path.join(s.dir, "var", "spool"), 0o755)
        os.chmod(jobs, 0o755)
        s.start()
        self.addCleanup(s.stop)
        s.wait_log(r"spool: (\S+/)?var/spool was mode 0755, made it 0700")
        s.wait_log(r"spool: (\S+/)?var/spool/jobs was mode 0755, made it 0700")
        self.assertEqual(stat.S_IMODE(os.stat(jobs).st_mode), 0o700)


def relay_rules(port):
    return """
rule_set "main" {
  rule { name = "forward", recipients = { "example.test" }, actions = {
    relay { to = "127.0.0.1:%d", tls = "none" },
  } },
}
""" % port


class RelayJobs(unittest.TestCase):
    def test_relay_removed_from_the_config_still_delivers_once(self):
        port = free_port()
        a = Sluice(rules=relay_rules(port), server_extra="retry_initial_ms = 100, "
                   "retry_max_ms = 300,").start()
        self.addCleanup(a.stop)
        for n in range(2):
            send(a, n)
        self.assertTrue(wait_for(lambda: len(re.findall(
            r"rule=forward action=relay attempts=1 outcome=retry", a.read_log())) == 2),
            a.read_log())
        reload(a, STORE_ONLY)
        b = Sluice(tls=False, listen='{ "127.0.0.1:%d" }' % port)
        b.port = port
        b.start()
        self.addCleanup(b.stop)
        self.assertTrue(wait_for(lambda: len(b.maildir("example.test", "user")) == 2),
                        a.read_log())
        self.assertTrue(wait_for(lambda: job_files(a) == []), a.read_log())
        time.sleep(0.5)
        ids = sorted(re.search(rb"Message-ID: (\S+)", read_file(f)).group(1)
                     for f in b.maildir("example.test", "user"))
        self.assertEqual(ids, [b"<job-0@example.net>", b"<job-1@example.net>"])
        # Accepted after the reload: stored by the new config, not relayed.
        send(a, 2)
        self.assertEqual(len(a.maildir("example.test", "user")), 1)
        self.assertNotIn("outcome=expired", a.read_log())


FAILING_SCRIPT = 'function handler(event, msg) error("target down") end\n'
WORKING_SCRIPT = ('function handler(event, msg) sluice.log("info", "async ran for " .. '
                  'msg:subject()) end\n')


class LuaJobs(unittest.TestCase):
    def test_async_script_job_outlives_its_rule(self):
        s = Sluice(rules="""
rule_set "main" {
  rule { name = "later", recipients = { "example.test" }, actions = {
    store { maildir = "var/mail/{domain}/{user}" },
    lua { script = "scripts/a.lua", invocation = "async" },
  } },
}
""", server_extra="retry_initial_ms = 100, retry_max_ms = 300,")
        os.makedirs(os.path.join(s.dir, "scripts"))
        script = os.path.join(s.dir, "scripts", "a.lua")
        with open(script, "w") as f:
            f.write(FAILING_SCRIPT)
        s.start()
        self.addCleanup(s.stop)
        send(s, 7)
        s.wait_log(r"rule=later action=lua attempts=1 outcome=retry error=\".*a\.lua:1: "
                   r"target down")
        # The script is a file the job refers to (relative to the config, as at load): fixing
        # it fixes the job, whose rule is gone.
        with open(script, "w") as f:
            f.write(WORKING_SCRIPT)
        reload(s, STORE_ONLY)
        s.wait_log(r"async ran for job 7")
        s.wait_log(r"rule=later action=lua attempts=\d+ outcome=delivered")
        self.assertTrue(wait_for(lambda: job_files(s) == []))


if __name__ == "__main__":
    unittest.main()
