"""The webhook action against a real HTTP server: the SES-shaped JSON, the HMAC signature,
retries after the receiver comes back, expiry, in-session tempfail, and jobs surviving
kill -9."""
import base64
import glob
import hashlib
import hmac
import os
import re
import smtplib
import time
import unittest
import urllib.request

from sluice_harness import Sluice, free_port, wait_for
from test_config import assert_action_errors
from webhook_sink import WebhookSink


def rules(url, extra=""):
    return """
rule_set "main" {
  rule { name = "notify", recipients = { "example.test" }, actions = {
    store { maildir = "var/mail/{domain}/{user}" },
    webhook { url = "%s", content = "full", encoding = "base64", secret = "s3cret" %s },
  } },
}
""" % (url, extra)


MSG = (b"From: Alice <alice@example.net>\r\nTo: user@example.test\r\nSubject: hello hook\r\n"
       b"Message-ID: <abc@example.net>\r\n\r\nbody line\r\n")


def send(s, rcpts=("user@example.test",)):
    with smtplib.SMTP("127.0.0.1", s.port, timeout=10) as c:
        return c.sendmail("alice@example.net", list(rcpts), MSG)


def spool_files(s, kind):
    return glob.glob(os.path.join(s.dir, "var", "spool", kind, "*"))


class Delivery(unittest.TestCase):
    def setUp(self):
        self.sink = WebhookSink().start()
        self.addCleanup(self.sink.stop)
        self.s = Sluice(rules=rules(self.sink.url), server_extra="retry_initial_ms = 200,")
        self.s.start()
        self.addCleanup(self.s.stop)

    def test_ses_shaped_notification_signed(self):
        send(self.s, ["user@example.test", "other+x@example.test"])
        self.assertTrue(wait_for(lambda: len(self.sink.requests) == 1), self.s.read_log())
        headers, raw = self.sink.requests[0]
        body = raw
        n = self.sink.notifications()[0][1]
        self.assertEqual(n["notificationType"], "Received")
        self.assertEqual(sorted(n["receipt"]["recipients"]),
                         ["other+x@example.test", "user@example.test"])
        self.assertEqual(n["receipt"]["action"], {"type": "Webhook", "url": self.sink.url,
                                                  "encoding": "BASE64"})
        mail = n["mail"]
        self.assertEqual(mail["source"], "alice@example.net")
        self.assertFalse(mail["headersTruncated"])
        self.assertEqual(mail["commonHeaders"]["subject"], "hello hook")
        self.assertEqual(mail["commonHeaders"]["from"], ["Alice <alice@example.net>"])
        self.assertEqual(mail["commonHeaders"]["messageId"], "<abc@example.net>")
        names = [h["name"] for h in mail["headers"]]
        self.assertEqual(names[:2], ["Return-Path", "Received"])
        content = base64.b64decode(n["content"])
        self.assertTrue(content.endswith(MSG))
        want = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
        self.assertEqual(headers["X-Sluice-Signature"], "sha256=" + want)
        self.assertRegex(headers["X-Sluice-Delivery-Id"], r"^\w+-1$")
        # Done jobs leave nothing in the spool.
        self.assertTrue(wait_for(lambda: spool_files(self.s, "jobs") == []))
        self.assertTrue(wait_for(lambda: spool_files(self.s, "msg") == []))
        self.assertEqual(len(self.s.maildir("example.test", "user")), 1)


class Retries(unittest.TestCase):
    def test_retried_until_the_receiver_accepts(self):
        sink = WebhookSink(fail_first=2).start()
        self.addCleanup(sink.stop)
        mport = free_port()
        s = Sluice(rules=rules(sink.url), server_extra='retry_initial_ms = 100, '
                   'metrics = "127.0.0.1:%d",' % mport).start()
        self.addCleanup(s.stop)
        send(s)
        self.assertTrue(wait_for(lambda: len(sink.requests) == 1), s.read_log())
        s.wait_log(r"action job=(\S+)-\d+ qid=\1 rule_set=main rule=notify action=webhook "
                   r"attempts=3 "
                   r"outcome=delivered")
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % mport) as r:
            text = r.read().decode()
        self.assertIn('sluice_rule_publish_failure_total{rule_set="main",rule="notify"} 1', text)
        self.assertIn('sluice_rule_publish_expired_total{rule_set="main",rule="notify"} 0', text)

    def test_expired_after_expire_after(self):
        sink = WebhookSink(always_fail=True).start()
        self.addCleanup(sink.stop)
        mport = free_port()
        s = Sluice(rules=rules(sink.url, ', expire_after = "1s"'),
                   server_extra='retry_initial_ms = 100, metrics = "127.0.0.1:%d",' % mport)
        s.start()
        self.addCleanup(s.stop)
        send(s)
        s.wait_log(r"outcome=expired error=\"POST \S+: HTTP 500\"")
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % mport) as r:
            text = r.read().decode()
        self.assertIn('sluice_rule_publish_expired_total{rule_set="main",rule="notify"} 1', text)
        # The log line comes just before the files go: wait for them.
        self.assertTrue(wait_for(lambda: spool_files(s, "jobs") == []))
        self.assertTrue(wait_for(lambda: spool_files(s, "msg") == []))
        # The message itself was accepted and stored: only the notification expired.
        self.assertEqual(len(s.maildir("example.test", "user")), 1)

    def test_continue_policy_tries_once(self):
        sink = WebhookSink(always_fail=True).start()
        self.addCleanup(sink.stop)
        s = Sluice(rules=rules(sink.url, ', on_failure = "continue"'),
                   server_extra="retry_initial_ms = 100,").start()
        self.addCleanup(s.stop)
        send(s)
        s.wait_log(r"attempts=1 outcome=failed")
        self.assertTrue(wait_for(lambda: spool_files(s, "jobs") == []))


class Tempfail(unittest.TestCase):
    def test_tempfail_runs_in_session(self):
        port = free_port()
        s = Sluice(rules=rules("http://127.0.0.1:%d/hook" % port,
                               ', on_failure = "tempfail", timeout_ms = 2000')).start()
        self.addCleanup(s.stop)
        with self.assertRaises(smtplib.SMTPDataError) as e:
            send(s)
        self.assertEqual(e.exception.smtp_code, 451)
        self.assertEqual(s.maildir("example.test", "user"), [])
        sink = WebhookSink(port=port).start()
        self.addCleanup(sink.stop)
        send(s)
        # Delivered before the 250 came back: no waiting needed.
        self.assertEqual(len(sink.requests), 1)
        self.assertEqual(spool_files(s, "jobs"), [])


class Crash(unittest.TestCase):
    def test_jobs_survive_kill9_and_run_once(self):
        port = free_port()
        s = Sluice(rules=rules("http://127.0.0.1:%d/hook" % port),
                   server_extra="retry_initial_ms = 60000,")
        s.start()
        for _ in range(3):
            send(s)
        self.assertTrue(wait_for(lambda: len(spool_files(s, "jobs")) == 3))
        s.kill9()
        sink = WebhookSink(port=port).start()
        self.addCleanup(sink.stop)
        s.start()
        self.addCleanup(s.stop)
        s.wait_log(r"resuming 3 post-acceptance jobs")
        self.assertTrue(wait_for(lambda: len(sink.requests) == 3), s.read_log())
        ids = [h["X-Sluice-Delivery-Id"] for h, _ in sink.requests]
        self.assertEqual(len(set(ids)), 3)
        self.assertTrue(wait_for(lambda: spool_files(s, "jobs") == []))
        time.sleep(0.3)
        self.assertEqual(len(sink.requests), 3)


class ConfigErrors(unittest.TestCase):
    def test_errors(self):
        assert_action_errors(self, (
            ('webhook { url = "ftp://x" }', "must start with http"),
            ('webhook { url = "http://x", content = "all" }', "content must be"),
            ('webhook { url = "http://x", on_failure = "ignore" }', "on_failure must be"),
            ('webhook { url = "http://x", expire_after = "soon" }', "expire_after"),
            ('store { maildir = "x", on_failure = "retry" }', "needs a post-acceptance action"),
            ('store { maildir = "x", expire_after = "1h" }', "post-acceptance actions only"),
            ('webhook { }', "missing required field 'url'"),
            # A job keeps its action's parameters as JSON text, which holds UTF-8 only.
            ('webhook { url = "http://x", secret = "\\xff" }',
             "webhook: its parameters must be plain values to be kept in the spool: string is "
             "not valid UTF-8")))


if __name__ == "__main__":
    unittest.main()
