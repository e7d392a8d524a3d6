"""Job files across sluice versions: a job file without a "version" field (the format sluice
wrote before the field existed, version 1) still runs after an upgrade, looking its action up
in the config as before; a job file of a version this sluice does not know is refused with a
log line and left untouched, and the other jobs still run. A version 2 job carries its action
in an "action" object: one that is missing or malformed, or whose parameters its action type
refuses, is logged and left in place, never run with a guess."""
import json
import os
import re
import smtplib
import unittest

from sluice_harness import Sluice, read_file, wait_for
from webhook_sink import WebhookSink

RULES = """
rule_set "main" {
  rule { name = "notify", recipients = { "example.test" }, actions = {
    store { maildir = "var/mail/{domain}/{user}" },
    webhook { url = "%s", content = "full", encoding = "base64", secret = "s3cret" },
  } },
}
"""

MSG = (b"Return-Path: <alice@example.net>\r\nFrom: Alice <alice@example.net>\r\n"
       b"To: user@example.test\r\nSubject: %s\r\nMessage-ID: <%s@example.net>\r\n\r\nbody\r\n")


def v1_job(qid, subject):
    """A job exactly as sluice wrote it before job files had a version (keys in its order)."""
    return {
        "id": qid + "-1", "qid": qid, "rule_set": "main", "rule": "notify", "action_index": 1,
        "action_type": "webhook", "rcpts": ["user@example.test"],
        "mail_from": "alice@example.net", "helo": "client.example.net",
        "client_ip": "127.0.0.1", "tls": False,
        "verdicts": {"spf": "none", "dkim": "none", "dmarc": "none", "spam": "unset",
                     "virus": "unset", "dmarc_policy": "unset"},
        "arrival": 1700000000, "created": 1700000000, "next_attempt": 1700000000,
        "attempts": 0, "expire_after_ms": 86400000 * 365 * 20, "on_failure": "retry",
        "msg_path": "var/spool/msg/%s.eml" % qid,
    }


def logged(pattern):
    """pattern for a message as the log writes it: its double quotes escaped."""
    return pattern.replace('"', r'\\"')


def v2_job(qid, url, **action):
    """A job as this sluice writes it (version 2), for the webhook at url."""
    job = dict(v1_job(qid, ""), version=2)
    for key in ("action_type", "on_failure", "expire_after_ms"):
        del job[key]
    job["action"] = dict({
        "type": "webhook", "on_failure": "retry", "expire_after_ms": 86400000 * 365 * 20,
        "params": {"url": url, "content": "full", "encoding": "base64", "secret": "s3cret"},
        "config_file": "/nonexistent/sluice.lua"}, **action)
    return job


class Versions(unittest.TestCase):
    def setUp(self):
        self.sink = WebhookSink().start()
        self.addCleanup(self.sink.stop)
        self.s = Sluice(rules=RULES % self.sink.url, server_extra="retry_initial_ms = 200,")
        self.jobs = os.path.join(self.s.dir, "var", "spool", "jobs")
        self.msgs = os.path.join(self.s.dir, "var", "spool", "msg")
        os.makedirs(self.jobs, mode=0o700)
        os.makedirs(self.msgs, mode=0o700)

    def spool(self, job, subject):
        qid = job["qid"]
        with open(os.path.join(self.msgs, qid + ".eml"), "wb") as f:
            f.write(MSG % (subject.encode(), qid.encode()))
        path = os.path.join(self.jobs, job["id"] + ".job")
        with open(path, "w") as f:
            f.write(json.dumps(job, separators=(",", ":")))
        return path

    def subjects(self):
        return [n[1]["mail"]["commonHeaders"]["subject"] for n in self.sink.notifications()]

    def test_version1_job_without_version_field_runs(self):
        path = self.spool(v1_job("0123456789ABCDEF", "from before"), "from before")
        self.s.start()
        self.addCleanup(self.s.stop)
        self.assertTrue(wait_for(lambda: len(self.sink.requests) == 1), self.s.read_log())
        self.assertEqual(self.subjects(), ["from before"])
        self.assertTrue(wait_for(lambda: not os.path.exists(path)), self.s.read_log())

    def test_unknown_version_left_in_place_others_run(self):
        newer = dict(v1_job("FEDCBA9876543210", "from the future"), version=99)
        newer_path = self.spool(newer, "from the future")
        newer_bytes = open(newer_path, "rb").read()
        self.spool(v1_job("0123456789ABCDEF", "from before"), "from before")
        self.s.start()
        self.addCleanup(self.s.stop)
        self.s.wait_log(r"spool job \S*/FEDCBA9876543210-1\.job has version 99; this sluice "
                        r"reads versions 1-\d+: left in place")
        # The readable old job still runs, and so does a new message.
        self.assertTrue(wait_for(lambda: len(self.sink.requests) == 1), self.s.read_log())
        with smtplib.SMTP("127.0.0.1", self.s.port, timeout=10) as c:
            c.sendmail("alice@example.net", ["user@example.test"],
                       MSG % (b"new", b"new"))
        self.assertTrue(wait_for(lambda: len(self.sink.requests) == 2), self.s.read_log())
        self.assertEqual(sorted(self.subjects()), ["from before", "new"])
        # Never misread, moved aside or deleted: a newer sluice must still find it.
        self.assertEqual(open(newer_path, "rb").read(), newer_bytes)
        self.assertTrue(os.path.exists(os.path.join(self.msgs, "FEDCBA9876543210.eml")))
        self.assertEqual(sorted(os.listdir(self.jobs)), ["FEDCBA9876543210-1.job"])

    def test_version1_job_whose_rule_is_gone_expires_as_before(self):
        job = dict(v1_job("0123456789ABCDEF", "orphan"), rule="gone")
        path = self.spool(job, "orphan")
        self.s.start()
        self.addCleanup(self.s.stop)
        self.s.wait_log(r"action job=0123456789ABCDEF-1 rule_set=main rule=gone action=webhook "
                        r"attempts=0 outcome=expired error=\"the action is no longer in the "
                        r"config\"")
        self.assertTrue(wait_for(lambda: not os.path.exists(path)), self.s.read_log())
        self.assertEqual(self.sink.requests, [])

    def test_version2_job_runs_with_its_own_action(self):
        # Its rule is not in the config and its URL is not the config's: it runs as spooled.
        other = WebhookSink().start()
        self.addCleanup(other.stop)
        job = dict(v2_job("0123456789ABCDEF", other.url), rule="gone")
        path = self.spool(job, "carried")
        self.s.start()
        self.addCleanup(self.s.stop)
        self.assertTrue(wait_for(lambda: len(other.requests) == 1), self.s.read_log())
        self.assertEqual([n[1]["mail"]["commonHeaders"]["subject"]
                          for n in other.notifications()], ["carried"])
        self.assertTrue(wait_for(lambda: not os.path.exists(path)), self.s.read_log())
        self.assertEqual(self.sink.requests, [])

    def test_bad_action_objects_left_in_place_others_run(self):
        url = self.sink.url
        cases = [
            ("no action", None, r'no "action" object'),
            ("action string", "webhook", r'"action" is not an object'),
            ("no type", {"type": None}, r"action\.type is not a non-empty string"),
            ("bad policy", {"on_failure": "sometimes"},
             r'action\.on_failure is not "retry" or "continue"'),
            ("bad expiry", {"expire_after_ms": -5},
             r"action\.expire_after_ms is not a positive integer"),
            ("params list", {"params": [url]}, r"action\.params is not an object"),
            ("no config file", {"config_file": 7}, r"action\.config_file is not a string"),
            ("dsn with params", {"type": "dsn"}, r"a dsn job has no action\.params"),
            ("dsn without dsn", {"type": "dsn", "params": None, "config_file": None},
             r'a dsn job has no "dsn" object'),
        ]
        kept = {}
        for n, (name, action, why) in enumerate(cases):
            qid = "BAD%013d" % n
            job = v2_job(qid, url)
            if action is None:
                del job["action"]
            elif isinstance(action, dict):
                job["action"].update(action)
                job["action"] = {k: v for k, v in job["action"].items() if v is not None}
            else:
                job["action"] = action
            path = self.spool(job, name)
            kept[path] = (read_file(path), why)
        # A sibling of the first (same message) runs; the message stays for the one left.
        sibling = dict(v2_job("BAD0000000000000", url), id="BAD0000000000000-2")
        good = self.spool(sibling, "good")
        self.s.start()
        self.addCleanup(self.s.stop)
        for path, (_data, why) in kept.items():
            rel = os.path.relpath(path, self.s.dir)  # as the config names it: data_dir = "var"
            self.s.wait_log(logged(r'spool job %s has a bad "action" object \(%s\): left in place'
                                   % (re.escape(rel), why)))
        self.assertTrue(wait_for(lambda: len(self.sink.requests) == 1), self.s.read_log())
        self.assertEqual(self.subjects(), ["good"])
        self.assertTrue(wait_for(lambda: not os.path.exists(good)), self.s.read_log())
        for path, (data, _why) in kept.items():
            self.assertEqual(read_file(path), data)
        self.assertEqual(len(os.listdir(self.msgs)), len(cases))

    def test_unknown_version_keeps_the_message_its_sibling_shares(self):
        newer = dict(v1_job("FEDCBA9876543210", "shared"), version=99)
        self.spool(newer, "shared")
        older = dict(v1_job("FEDCBA9876543210", "shared"), id="FEDCBA9876543210-2")
        older_path = self.spool(older, "shared")
        self.s.start()
        self.addCleanup(self.s.stop)
        self.assertTrue(wait_for(lambda: len(self.sink.requests) == 1), self.s.read_log())
        self.assertTrue(wait_for(lambda: not os.path.exists(older_path)), self.s.read_log())
        self.assertTrue(os.path.exists(os.path.join(self.msgs, "FEDCBA9876543210.eml")))
        self.assertEqual(sorted(os.listdir(self.jobs)), ["FEDCBA9876543210-1.job"])

    def test_version2_dsn_job_runs(self):
        relay = Sluice(domains=("example.net",), tls=False, rules="""
rule_set "main" { rule { name = "all", actions = { store { maildir = "var/mail/{domain}/{user}" } } } }
""").start()
        self.addCleanup(relay.stop)
        job = v2_job("0123456789ABCDEF", "", type="dsn")
        del job["action"]["params"], job["action"]["config_file"]
        job.update(rule="-", action_index=-1, dsn={
            "report": "\nFinal-Recipient: rfc822; bob@example.test\nAction: failed\n"
                      "Status: 5.7.1\nDiagnostic-Code: smtp; 550 5.7.1 No\n",
            "from": "MAILER-DAEMON@mx.example.test", "relay": "127.0.0.1:%d" % relay.port,
            "hostname": "mx.example.test"})
        path = self.spool(job, "partly refused")
        self.s.start()
        self.addCleanup(self.s.stop)
        self.assertTrue(wait_for(lambda: relay.maildir("example.net", "alice")), self.s.read_log())
        data = read_file(relay.maildir("example.net", "alice")[0])
        self.assertIn(b"Final-Recipient: rfc822; bob@example.test", data)
        self.s.wait_log(r"action=dsn attempts=1 outcome=delivered")
        self.assertTrue(wait_for(lambda: not os.path.exists(path)), self.s.read_log())

    def test_parameters_the_action_refuses_left_in_place(self):
        cases = [
            ({"params": {"url": "ftp://127.0.0.1/"}},
             r"webhook: url must start with http:// or https://"),
            ({"params": {"url": self.sink.url, "colour": "red"}}, r"unknown key 'colour'"),
            ({"type": "store", "params": {"maildir": "var/mail"}},
             r'"store" is not a post-acceptance action type'),
            ({"type": "ftp"}, r'"ftp" is not a post-acceptance action type'),
        ]
        kept = {}
        for n, (action, why) in enumerate(cases):
            qid = "REF%013d" % n
            job = v2_job(qid, self.sink.url)
            job["action"].update(action)
            path = self.spool(job, "refused")
            kept[qid] = (path, read_file(path), why)
        self.s.start()
        self.addCleanup(self.s.stop)
        for qid, (_path, _data, why) in kept.items():
            self.s.wait_log(logged(r"spool job %s-1: cannot build its \w+ action from the "
                                   r"parameters it carries \(.*%s.*\): left in place, not run"
                                   % (qid, why)))
        # A new message still runs, and the refused jobs stay as they were, messages and all.
        with smtplib.SMTP("127.0.0.1", self.s.port, timeout=10) as c:
            c.sendmail("alice@example.net", ["user@example.test"], MSG % (b"new", b"new"))
        self.assertTrue(wait_for(lambda: len(self.sink.requests) == 1), self.s.read_log())
        self.assertEqual(self.subjects(), ["new"])
        for qid, (path, data, _why) in kept.items():
            self.assertEqual(read_file(path), data)
            self.assertTrue(os.path.exists(os.path.join(self.msgs, qid + ".eml")))
        self.assertNotIn("outcome=expired", self.s.read_log())


if __name__ == "__main__":
    unittest.main()
