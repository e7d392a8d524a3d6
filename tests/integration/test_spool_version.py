"""Job files across sluice versions. Version 1 had the envelope's fields flat beside the job's
and found its action in the config by rule and position; version 2, the one written now, has the
envelope in one "envelope" object and the action in an "action" object. A version 1 file (with
or without the "version" field, which came later) still runs after an upgrade, looking its
action up as before; a version 2 file round-trips through a restart; a version 2 file with a
broken envelope is moved aside as .bad with the field named; one whose "action" is missing or
malformed, or whose parameters its action type refuses, is logged and left in place, never run
with a guess; a job file of a version this sluice does not know is refused with a log line and
left untouched, and the other jobs still run."""
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

# Every recipient is stored, only user@ is notified: the job carries the rule's recipients.
RULES_ONE_NOTIFIED = """
rule_set "main" {
  rule { name = "all", recipients = { "example.test" }, actions = {
    store { maildir = "var/mail/{domain}/{user}" } } },
  rule { name = "notify", recipients = { "user@example.test" }, actions = {
    webhook { url = "%s", content = "full", encoding = "base64", secret = "s3cret" },
  } },
}
"""

ENVELOPE_KEYS = ["qid", "arrival", "client_ip", "client_port", "client_rdns", "helo", "esmtp",
                 "tls", "tls_version", "tls_cipher", "mail_from", "rcpts", "verdicts",
                 "smtputf8", "dsn_ret", "dsn_envid", "rcpt_dsn"]

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
    """A version 2 job as this sluice writes it, for the webhook at url: the envelope and the
    action each in their own object."""
    job = {
        "version": 2, "id": qid + "-1", "rule_set": "main", "rule": "notify", "action_index": 1,
        "envelope": {
            "qid": qid, "arrival": 1700000000, "client_ip": "192.0.2.7", "client_port": 40000,
            "client_rdns": None, "helo": "client.example.net", "esmtp": True, "tls": False,
            "tls_version": "", "tls_cipher": "", "mail_from": "alice@example.net",
            "rcpts": ["user@example.test"],
            "verdicts": {"spf": "UNSET", "dkim": "UNSET", "dmarc": "UNSET", "spam": "UNSET",
                         "virus": "UNSET", "dmarc_policy": "UNSET"}},
        "created": 1700000000, "next_attempt": 1700000000, "attempts": 0,
        "msg_path": "var/spool/msg/%s.eml" % qid,
    }
    job["action"] = dict({
        "type": "webhook", "on_failure": "retry", "expire_after_ms": 86400000 * 365 * 20,
        "params": {"url": url, "content": "full", "encoding": "base64", "secret": "s3cret"},
        "config_file": "/nonexistent/sluice.lua"}, **action)
    return job


class SpoolCase(unittest.TestCase):
    rules = RULES

    def setUp(self):
        self.sink = WebhookSink().start()
        self.addCleanup(self.sink.stop)
        self.s = Sluice(rules=self.rules % self.sink.url, server_extra="retry_initial_ms = 200,")
        self.jobs = os.path.join(self.s.dir, "var", "spool", "jobs")
        self.msgs = os.path.join(self.s.dir, "var", "spool", "msg")
        os.makedirs(self.jobs, mode=0o700)
        os.makedirs(self.msgs, mode=0o700)

    def spool(self, job, subject):
        qid = job["id"].rsplit("-", 1)[0]
        with open(os.path.join(self.msgs, qid + ".eml"), "wb") as f:
            f.write(MSG % (subject.encode(), qid.encode()))
        path = os.path.join(self.jobs, job["id"] + ".job")
        with open(path, "w") as f:
            f.write(json.dumps(job, separators=(",", ":")))
        return path

    def subjects(self):
        return [n[1]["mail"]["commonHeaders"]["subject"] for n in self.sink.notifications()]



class Versions(SpoolCase):
    def test_version1_job_without_version_field_runs(self):
        path = self.spool(v1_job("0123456789ABCDEF", "from before"), "from before")
        self.s.start()
        self.addCleanup(self.s.stop)
        self.assertTrue(wait_for(lambda: len(self.sink.requests) == 1), self.s.read_log())
        self.assertEqual(self.subjects(), ["from before"])
        self.assertTrue(wait_for(lambda: not os.path.exists(path)), self.s.read_log())

    def test_version1_job_with_version_field_runs(self):
        path = self.spool(dict(v1_job("0123456789ABCDEF", "said so"), version=1), "said so")
        self.s.start()
        self.addCleanup(self.s.stop)
        self.assertTrue(wait_for(lambda: len(self.sink.requests) == 1), self.s.read_log())
        mail = self.sink.notifications()[0][1]["mail"]
        self.assertEqual((mail["commonHeaders"]["subject"], mail["messageId"], mail["source"],
                          mail["destination"]),
                         ("said so", "0123456789ABCDEF", "alice@example.net",
                          ["user@example.test"]))
        self.assertTrue(wait_for(lambda: not os.path.exists(path)), self.s.read_log())

    def test_version2_job_written_by_hand_runs(self):
        path = self.spool(v2_job("00112233445566778899", self.sink.url), "by hand")
        self.s.start()
        self.addCleanup(self.s.stop)
        self.assertTrue(wait_for(lambda: len(self.sink.requests) == 1), self.s.read_log())
        mail = self.sink.notifications()[0][1]["mail"]
        self.assertEqual((mail["commonHeaders"]["subject"], mail["messageId"], mail["source"],
                          mail["destination"], mail["timestamp"]),
                         ("by hand", "00112233445566778899", "alice@example.net",
                          ["user@example.test"], "2023-11-14T22:13:20.000Z"))
        self.assertTrue(wait_for(lambda: not os.path.exists(path)), self.s.read_log())

    def test_version2_job_with_broken_envelope_moved_aside(self):
        no_helo = v2_job("AAAA0000000000000001", self.sink.url)
        del no_helo["envelope"]["helo"]
        no_helo_path = self.spool(no_helo, "no helo")
        bad_port = v2_job("AAAA0000000000000002", self.sink.url)
        bad_port["envelope"]["client_port"] = "40000"
        bad_port_path = self.spool(bad_port, "bad port")
        flat = dict(v1_job("AAAA0000000000000003", "flat"), version=2)  # v1 fields, v2 label
        flat_path = self.spool(flat, "flat")
        garbage_path = os.path.join(self.jobs, "AAAA0000000000000004-1.job")
        with open(garbage_path, "w") as f:
            f.write('{"version": 2, "id": ')
        self.spool(v2_job("00112233445566778899", self.sink.url), "fine")
        self.s.start()
        self.addCleanup(self.s.stop)
        for path, why in ((no_helo_path, "envelope field 'helo' is missing"),
                          (bad_port_path, "envelope field 'client_port' is not an integer"),
                          (flat_path, "envelope is not a JSON object"),
                          (garbage_path, None)):
            name = re.escape(os.path.basename(path))
            # Not JSON at all: the parser's own words, whatever they are.
            why = re.escape(why) if why else r"[^)]+"
            self.s.wait_log(r"spool: unreadable job \S*/%s \(%s\) moved to \S*/%s\.bad"
                            % (name, why, name))
            self.assertFalse(os.path.exists(path))
            self.assertTrue(os.path.exists(path + ".bad"))
        # The readable job beside them still runs, and only it.
        self.assertTrue(wait_for(lambda: len(self.sink.requests) == 1), self.s.read_log())
        self.assertEqual(self.subjects(), ["fine"])

    def test_unknown_version_left_in_place_others_run(self):
        newer = dict(v1_job("FEDCBA9876543210", "from the future"), version=99)
        newer_path = self.spool(newer, "from the future")
        with open(newer_path, "rb") as f:
            newer_bytes = f.read()
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
        with open(newer_path, "rb") as f:
            self.assertEqual(f.read(), newer_bytes)
        self.assertTrue(os.path.exists(os.path.join(self.msgs, "FEDCBA9876543210.eml")))
        # The delivered jobs' files go once the webhook answered, which the sink sees first.
        self.assertTrue(wait_for(lambda: os.listdir(self.jobs) == ["FEDCBA9876543210-1.job"]),
                        os.listdir(self.jobs))


class Written(SpoolCase):
    rules = RULES_ONE_NOTIFIED

    def job_files(self):
        return [n for n in os.listdir(self.jobs) if n.endswith(".job")]

    def test_job_written_as_version2_and_read_back_after_restart(self):
        self.sink.always_fail = True
        self.s.start()
        with smtplib.SMTP("127.0.0.1", self.s.port, timeout=10,
                          local_hostname="client.example.net") as c:
            c.sendmail("alice@example.net", ["user@example.test", "other@example.test"],
                       MSG % (b"kept", b"kept"))
        self.s.wait_log(r"action=webhook attempts=1 outcome=retry")
        self.s.stop()
        self.assertEqual(len(self.job_files()), 1, os.listdir(self.jobs))
        name = self.job_files()[0]
        with open(os.path.join(self.jobs, name)) as f:
            job = json.load(f)
        self.assertEqual(job["version"], 2)
        env = job["envelope"]
        self.assertEqual(list(env), ENVELOPE_KEYS)
        # The envelope's fields live only there, not flat beside the job's as in version 1.
        self.assertFalse(set(ENVELOPE_KEYS) & set(job), job)
        self.assertEqual(name, env["qid"] + "-1.job")
        self.assertEqual((env["client_ip"], env["helo"], env["esmtp"], env["tls"],
                          env["mail_from"], env["rcpts"]),
                         ("127.0.0.1", "client.example.net", True, False,
                          "alice@example.net", ["user@example.test"]))
        self.assertTrue(0 < env["client_port"] < 65536, env)
        self.assertEqual(env["verdicts"]["spf"], "UNSET")
        self.assertEqual(job["attempts"], 1)

        # A restarted sluice reads it back and runs it with the same envelope.
        self.sink.always_fail = False
        self.s.start()
        self.addCleanup(self.s.stop)
        self.assertTrue(wait_for(lambda: len(self.sink.requests) == 1), self.s.read_log())
        mail = self.sink.notifications()[0][1]["mail"]
        self.assertEqual((mail["messageId"], mail["source"], mail["destination"]),
                         (env["qid"], "alice@example.net", ["user@example.test"]))
        self.assertTrue(wait_for(lambda: not self.job_files()), self.s.read_log())



class Actions(SpoolCase):
    """Version 2 jobs carry their action (issue 23)."""

    def test_version1_job_whose_rule_is_gone_expires_as_before(self):
        job = dict(v1_job("0123456789ABCDEF", "orphan"), rule="gone")
        path = self.spool(job, "orphan")
        self.s.start()
        self.addCleanup(self.s.stop)
        self.s.wait_log(r"action job=0123456789ABCDEF-1 qid=0123456789ABCDEF rule_set=main "
                        r"rule=gone action=webhook "
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
