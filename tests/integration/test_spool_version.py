"""Job files across sluice versions: a job file without a "version" field (the format sluice
wrote before the field existed, version 1) still runs after an upgrade; a job file of a
version this sluice does not know is refused with a log line and left untouched, and the
other jobs still run."""
import json
import os
import smtplib
import unittest

from sluice_harness import Sluice, wait_for
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


if __name__ == "__main__":
    unittest.main()
