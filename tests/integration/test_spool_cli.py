"""Issue 23: the queue tools. `sluice spool list|show ID|retry ID|--all|drop ID` on the jobs a
real sluice spooled for a real webhook sink, while serve runs (through its control directory)
and while it does not (directly, under the spool lock): waiting jobs are listed and shown with
their last error and secrets masked; retry runs a job now, exactly once; drop removes it (and
its message file with the message's last job) so that it never runs, also when its attempt is
in flight; held jobs are listed and dropped, never retried; unknown ids fail."""
import glob
import json
import os
import re
import signal
import smtplib
import subprocess
import threading
import time
import unittest
import urllib.request

from sluice_harness import BIN, Sluice, free_port, wait_for
from webhook_sink import WebhookSink

# After a failed attempt a job waits an hour: only the CLI makes it run again.
SERVER_EXTRA = 'retry_initial_ms = 3600000, retry_max_ms = 3600000, metrics = "127.0.0.1:%d",'

RULES = """
rule_set "main" {
  rule { name = "notify", recipients = { "example.test" }, actions = {
    webhook { url = "%s", content = "headers", secret = "old-secret" },
    webhook { url = "%s", content = "headers" },
  } },
  rule { name = "archive", recipients = { "example.test" }, actions = {
    store { maildir = "var/mail/{domain}/{user}" },
  } },
}
"""


def message(n):
    return ("From: alice@example.net\r\nTo: user@example.test\r\nSubject: job %d\r\n"
            "Message-ID: <job-%d@example.net>\r\n\r\nbody %d\r\n" % (n, n, n)).encode()


def ids(sink):
    return sorted(n["mail"]["commonHeaders"]["messageId"] for _h, n in sink.notifications())


class SpoolCli(unittest.TestCase):
    def setUp(self):
        # a: the first webhook (with a secret), b: the second; both fail until told otherwise.
        self.a = WebhookSink(always_fail=True).start()
        self.b = WebhookSink(always_fail=True).start()
        self.addCleanup(self.a.stop)
        self.addCleanup(self.b.stop)
        self.mport = free_port()
        self.s = Sluice(rules=RULES % (self.a.url, self.b.url),
                        server_extra=SERVER_EXTRA % self.mport)
        self.s.start()
        self.addCleanup(self.s.stop)
        self.jobs = os.path.join(self.s.dir, "var", "spool", "jobs")
        self.msgs = os.path.join(self.s.dir, "var", "spool", "msg")

    def cli(self, *args):
        return self.s.run_cli("spool", *args, "-c", self.s.config_path)

    def ok(self, *args):
        r = self.cli(*args)
        self.assertEqual(r.returncode, 0, r.stderr + self.s.read_log())
        return r.stdout

    def job_ids(self):
        return sorted(os.path.basename(p)[:-4] for p in glob.glob(self.jobs + "/*.job"))

    def accept(self, count):
        """count messages, each with two jobs (a and b) whose first attempt failed; returns
        jobs_by_subject()."""
        for n in range(count):
            with smtplib.SMTP("127.0.0.1", self.s.port, timeout=10) as c:
                c.sendmail("alice@example.net", ["user@example.test"], message(n))
        self.assertTrue(wait_for(lambda: len(re.findall(
            r"action=webhook attempts=1 outcome=retry", self.s.read_log())) == 2 * count),
            self.s.read_log())
        self.assertEqual(len(self.job_ids()), 2 * count)
        return self.jobs_by_subject()

    def jobs_by_subject(self):
        """{(n, "a"|"b"): job id}, from the job files and their messages."""
        out = {}
        for path in glob.glob(self.jobs + "/*.job"):
            with open(path) as f:
                job = json.load(f)
            with open(os.path.join(self.s.dir, job["msg_path"]), "rb") as f:
                n = int(re.search(rb"Subject: job (\d+)", f.read()).group(1))
            which = "a" if job["action"]["params"]["url"] == self.a.url else "b"
            out[(n, which)] = job["id"]
        return out

    def metrics(self):
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.mport) as r:
            return r.read().decode()

    # --- list and show ----------------------------------------------------------------
    def test_list_and_show_waiting_jobs(self):
        jobs = self.accept(2)
        text = self.ok("list")
        for job_id in jobs.values():
            self.assertRegex(text, r"(?m)^%s  waiting  webhook  main/notify  attempts 1  age \d+s"
                                   r"  next in (59m|1h0m)" % job_id)
        self.assertIn("    from <alice@example.net> to user@example.test\n", text)
        self.assertRegex(text, r"last error: POST http://127\.0\.0\.1:%d/hook: HTTP 500"
                         % self.a.port)
        self.assertTrue(text.endswith("4 jobs\n"), text)

        listed = json.loads(self.ok("list", "--json"))
        self.assertEqual(sorted(j["id"] for j in listed), sorted(jobs.values()))
        one = [j for j in listed if j["id"] == jobs[(0, "a")]][0]
        self.assertEqual(one["state"], "waiting")
        self.assertEqual(one["action"], "webhook")
        self.assertEqual((one["rule_set"], one["rule"]), ("main", "notify"))
        self.assertEqual(one["recipients"], ["user@example.test"])
        self.assertEqual(one["attempts"], 1)
        self.assertIsInstance(one["age_s"], int)
        self.assertGreater(one["next_in_s"], 3000)
        self.assertEqual(one["next_attempt"] - one["last_attempt"], 3600)
        self.assertIn("HTTP 500", one["last_error"])

        shown = self.ok("show", jobs[(0, "a")])
        self.assertIn('"secret": "***"', shown)
        self.assertNotIn("old-secret", shown)
        self.assertIn('"url": "%s"' % self.a.url, shown)
        self.assertIn('"rcpts": [\n      "user@example.test"\n    ]', shown)
        self.assertIn("\nSubject: job 0\n", shown)  # text mode: \r\n read as \n
        self.assertNotIn("body 0", shown)

        doc = json.loads(self.ok("show", jobs[(1, "a")], "--json"))
        self.assertEqual(doc["job"]["action"]["params"]["secret"], "***")
        self.assertEqual(doc["job"]["attempts"], 1)
        self.assertEqual(doc["attempts"], 1)
        self.assertIn("Subject: job 1\r\n", doc["message_headers"])
        self.assertNotIn("old-secret", json.dumps(doc))
        # The job without a secret shows none either way.
        self.assertNotIn("***", self.ok("show", jobs[(1, "b")]))

    def test_unknown_and_bad_ids(self):
        self.accept(1)
        for sub in ("show", "retry", "drop"):
            r = self.cli(sub, "NOSUCHJOB-1")
            self.assertEqual(r.returncode, 1, (sub, r.stdout, r.stderr))
            self.assertIn("sluice: no job NOSUCHJOB-1 in var/spool/jobs", r.stderr)
            r = self.cli(sub, "../jobs/x")
            self.assertEqual(r.returncode, 1)
            self.assertIn("is not a job id", r.stderr)
        self.assertEqual(self.cli("retry").returncode, 2)
        self.assertEqual(self.cli("drop", "--all").returncode, 2)
        self.assertEqual(self.cli("frobnicate").returncode, 2)
        self.assertEqual(len(self.job_ids()), 2)

    def test_no_spool_yet(self):
        fresh = Sluice()
        r = fresh.run_cli("spool", "list", "-c", fresh.config_path)
        self.assertEqual((r.returncode, r.stdout), (0, "no jobs\n"), r.stderr)
        r = fresh.run_cli("spool", "list", "--json", "-c", fresh.config_path)
        self.assertEqual(json.loads(r.stdout), [])
        r = fresh.run_cli("spool", "drop", "AB-1", "-c", fresh.config_path)
        self.assertEqual(r.returncode, 1)
        self.assertIn("no job AB-1", r.stderr)
        r = fresh.run_cli("spool", "retry", "--all", "-c", fresh.config_path)
        self.assertEqual((r.returncode, r.stdout), (0, "no jobs\n"), r.stderr)
        self.assertFalse(os.path.exists(os.path.join(fresh.dir, "var", "spool")))

    # --- retry --------------------------------------------------------------------------
    def test_retry_one_job_runs_it_now_exactly_once(self):
        jobs = self.accept(2)
        self.a.always_fail = self.b.always_fail = False
        out = self.ok("retry", jobs[(0, "a")])
        self.assertEqual(out, "job %s runs now\n" % jobs[(0, "a")])
        self.assertTrue(wait_for(lambda: jobs[(0, "a")] not in self.job_ids()), self.s.read_log())
        time.sleep(1)  # a second run would come now
        self.assertEqual(ids(self.a), ["<job-0@example.net>"])
        self.assertEqual(ids(self.b), [])
        self.assertEqual(len(self.job_ids()), 3)
        # The message file stays for the message's other job.
        self.assertEqual(len(os.listdir(self.msgs)), 2)

    def test_retry_all(self):
        jobs = self.accept(2)
        self.a.always_fail = self.b.always_fail = False
        out = self.ok("retry", "--all")
        self.assertEqual(out, "4 jobs run now, 0 already in flight, 0 held ones left as they are\n")
        self.assertTrue(wait_for(lambda: self.job_ids() == []), self.s.read_log())
        self.assertTrue(wait_for(lambda: os.listdir(self.msgs) == []))
        time.sleep(1)
        self.assertEqual(ids(self.a), ["<job-0@example.net>", "<job-1@example.net>"])
        self.assertEqual(ids(self.b), ["<job-0@example.net>", "<job-1@example.net>"])
        self.assertEqual(len(jobs), 4)

    # --- drop ---------------------------------------------------------------------------
    def test_drop_while_serving_its_sibling_still_runs(self):
        jobs = self.accept(1)
        qid = jobs[(0, "a")].rsplit("-", 1)[0]
        start = len(self.s.read_log())
        out = self.ok("drop", jobs[(0, "a")])
        self.assertEqual(out, "dropped job %s (webhook for rule main/notify, 1 recipients, 1 "
                              "attempts); its message file stays for the message's other jobs\n"
                         % jobs[(0, "a")])
        self.assertEqual(self.job_ids(), [jobs[(0, "b")]])
        self.assertEqual(os.listdir(self.msgs), [qid + ".eml"])
        self.s.wait_log(r"job=%s qid=\S+ rule_set=main rule=notify action=webhook attempts=1 "
                        r"outcome=dropped" % jobs[(0, "a")], start=start)
        self.assertIn('sluice_spool_dropped_total{action="webhook"} 1', self.metrics())
        self.assertIn('sluice_spool_expired_total{action="webhook"} 0', self.metrics())
        # Dropped means never run, also by retry --all; the sibling runs and takes the message.
        self.a.always_fail = self.b.always_fail = False
        self.assertEqual(self.ok("retry", "--all"),
                         "1 jobs run now, 0 already in flight, 0 held ones left as they are\n")
        self.assertTrue(wait_for(lambda: self.job_ids() == []), self.s.read_log())
        self.assertTrue(wait_for(lambda: os.listdir(self.msgs) == []))
        time.sleep(1)
        self.assertEqual(ids(self.a), [])
        self.assertEqual(ids(self.b), ["<job-0@example.net>"])
        r = self.cli("retry", jobs[(0, "a")])
        self.assertEqual(r.returncode, 1)

    def test_drop_last_job_removes_the_message(self):
        jobs = self.accept(1)
        self.ok("drop", jobs[(0, "a")])
        out = self.ok("drop", jobs[(0, "b")])
        self.assertIn("its message file was the last job's and is removed", out)
        self.assertEqual(self.job_ids(), [])
        self.assertEqual(os.listdir(self.msgs), [])
        self.assertIn('sluice_spool_dropped_total{action="webhook"} 2', self.metrics())

    def drop_in_flight(self, fail):
        """A drop that comes while the job's attempt hangs on a slow sink."""
        jobs = self.accept(1)
        job = jobs[(0, "a")]
        self.a.always_fail, self.a.delay = fail, 2
        self.b.always_fail = False
        self.ok("retry", job)
        self.assertTrue(wait_for(lambda: self.a.started == 2), self.s.read_log())
        start = len(self.s.read_log())
        result = {}
        t = threading.Thread(target=lambda: result.update(r=self.cli("drop", job)))
        t.start()
        self.s.wait_log(r"job %s: drop requested; its attempt in flight ends first" % job,
                        start=start)
        t.join(30)
        r = result["r"]
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn(job, self.job_ids())
        # Never again: retry --all finds only the sibling, and nothing more reaches a.
        self.a.delay = 0
        self.a.always_fail = False
        self.ok("retry", "--all")
        self.assertTrue(wait_for(lambda: self.job_ids() == []), self.s.read_log())
        time.sleep(1)
        self.assertEqual(self.a.started, 2)
        return job, r.stdout

    def test_drop_while_attempt_in_flight_that_fails(self):
        job, out = self.drop_in_flight(fail=True)
        self.assertTrue(out.startswith("dropped job %s (webhook" % job), out)
        self.assertEqual(ids(self.a), [])
        self.assertIn('sluice_spool_dropped_total{action="webhook"} 1', self.metrics())

    def test_drop_while_attempt_in_flight_that_delivers(self):
        job, out = self.drop_in_flight(fail=False)
        self.assertEqual(out, "job %s was delivered by the attempt in flight when the drop "
                              "came; it is gone\n" % job)
        self.assertEqual(ids(self.a), ["<job-0@example.net>"])  # once
        self.assertIn('sluice_spool_dropped_total{action="webhook"} 0', self.metrics())

    # --- without a server ---------------------------------------------------------------
    def test_list_retry_drop_without_a_server(self):
        jobs = self.accept(1)
        self.s.stop()
        self.assertIn("2 jobs\n", self.ok("list"))
        before = time.time()
        out = self.ok("retry", jobs[(0, "b")])
        self.assertEqual(out, "job %s due now; no sluice serve runs: it runs when it starts\n"
                         % jobs[(0, "b")])
        with open(os.path.join(self.jobs, jobs[(0, "b")] + ".job")) as f:
            job = json.load(f)
        self.assertLessEqual(abs(job["next_attempt"] - before), 2)
        self.assertEqual(job["attempts"], 1)
        self.assertIn("HTTP 500", job["last_error"])
        self.assertEqual(job["action"]["params"]["url"], self.b.url)
        out = self.ok("drop", jobs[(0, "a")])
        self.assertIn("dropped job %s (webhook for rule main/notify" % jobs[(0, "a")], out)
        self.assertIn("its message file stays", out)
        self.assertEqual(self.job_ids(), [jobs[(0, "b")]])
        self.assertEqual(len(os.listdir(self.msgs)), 1)
        self.assertIn("1 jobs due now", self.ok("retry", "--all"))
        # The next serve runs what is left, and nothing of what was dropped.
        self.a.always_fail = self.b.always_fail = False
        self.s.start()
        self.assertTrue(wait_for(lambda: self.job_ids() == []), self.s.read_log())
        time.sleep(1)
        self.assertEqual(ids(self.a), [])
        self.assertEqual(ids(self.b), ["<job-0@example.net>"])
        self.assertEqual(os.listdir(self.msgs), [])

    def test_request_left_over_is_applied_before_any_job_runs(self):
        jobs = self.accept(1)
        self.s.stop()
        # As a CLI leaves it when serve exits before answering and the CLI is gone too.
        control = os.path.join(self.s.dir, "var", "spool", "control")
        os.makedirs(control, exist_ok=True)
        open(os.path.join(control, "1-1.drop.%s.req" % jobs[(0, "a")]), "w").close()
        self.a.always_fail = self.b.always_fail = False
        self.s.start()
        self.assertTrue(wait_for(lambda: self.job_ids() == []), self.s.read_log())
        time.sleep(1)
        self.assertEqual(ids(self.a), [])
        self.assertEqual(ids(self.b), ["<job-0@example.net>"])
        with open(os.path.join(control, "1-1.done")) as f:
            self.assertTrue(json.load(f)["ok"])

    def test_server_gone_before_it_answered_the_cli_applies_the_drop(self):
        jobs = self.accept(1)
        control = os.path.join(self.s.dir, "var", "spool", "control")
        self.s.signal(signal.SIGSTOP)  # holds the lock, answers nothing
        result = {}
        t = threading.Thread(target=lambda: result.update(r=self.cli("drop", jobs[(0, "a")])))
        t.start()
        self.assertTrue(wait_for(lambda: os.path.isdir(control) and any(
            n.endswith(".req") for n in os.listdir(control))))
        self.s.kill9()  # the lock goes with the process
        t.join(30)
        r = result["r"]
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("dropped job %s (webhook for rule main/notify" % jobs[(0, "a")], r.stdout)
        self.assertEqual(os.listdir(control), [])
        self.assertEqual(self.job_ids(), [jobs[(0, "b")]])
        self.a.always_fail = self.b.always_fail = False
        self.s.start()
        self.assertTrue(wait_for(lambda: self.job_ids() == []), self.s.read_log())
        time.sleep(1)
        self.assertEqual(ids(self.a), [])
        self.assertEqual(ids(self.b), ["<job-0@example.net>"])

    def test_second_serve_on_the_same_spool_refused(self):
        # The same data_dir, another port.
        with open(self.s.config_path) as f:
            text = f.read().replace(":%d" % self.s.port, ":%d" % free_port())
        text = re.sub(r'metrics = "[^"]*",', "", text)
        other = os.path.join(self.s.dir, "other.lua")
        with open(other, "w") as f:
            f.write(text)
        r = subprocess.run([BIN, "serve", "-c", other], cwd=self.s.dir,
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 1)
        self.assertIn("var/spool/lock is held by another process: is another sluice serve "
                      "running with data_dir \"var\"?", r.stderr)

    # --- held jobs ----------------------------------------------------------------------
    def test_held_job_listed_shown_dropped_never_retried(self):
        self.s.stop()
        os.makedirs(self.jobs, exist_ok=True)
        os.makedirs(self.msgs, exist_ok=True)
        held = {"version": 99, "id": "FEDCBA9876543210-1", "future": True}
        with open(os.path.join(self.jobs, "FEDCBA9876543210-1.job"), "w") as f:
            json.dump(held, f)
        with open(os.path.join(self.msgs, "FEDCBA9876543210.eml"), "wb") as f:
            f.write(message(7))
        self.s.start()
        text = self.ok("list")
        self.assertIn("FEDCBA9876543210-1  held-unknown-version\n    has version 99; this "
                      "sluice reads versions 1-2\n", text)
        listed = json.loads(self.ok("list", "--json"))
        self.assertEqual(listed, [{"id": "FEDCBA9876543210-1", "state": "held-unknown-version",
                                   "qid": "FEDCBA9876543210",
                                   "reason": "has version 99; this sluice reads versions 1-2"}])
        self.assertIn('"future": true', self.ok("show", "FEDCBA9876543210-1"))
        for args in (("retry", "FEDCBA9876543210-1"),):
            r = self.cli(*args)
            self.assertEqual(r.returncode, 1)
            self.assertIn("job FEDCBA9876543210-1 is held", r.stderr)
        self.assertEqual(self.ok("retry", "--all"),
                         "0 jobs run now, 0 already in flight, 1 held ones left as they are\n")
        out = self.ok("drop", "FEDCBA9876543210-1")
        self.assertIn("dropped job FEDCBA9876543210-1 (held, never run); its message file was "
                      "the last job's and is removed", out)
        self.assertEqual(self.job_ids(), [])
        self.assertEqual(os.listdir(self.msgs), [])
        self.assertEqual(self.ok("list"), "no jobs\n")

    def test_held_job_without_a_server(self):
        self.s.stop()
        os.makedirs(self.jobs, exist_ok=True)
        with open(os.path.join(self.jobs, "AAAA-1.job"), "w") as f:
            f.write('{"version": 2, "id": "AAAA-1", "envelope": ')  # torn, not JSON
        self.assertIn("AAAA-1  held-unreadable\n", self.ok("list"))
        self.assertIn("is not JSON", self.ok("show", "AAAA-1"))
        r = self.cli("retry", "AAAA-1")
        self.assertEqual(r.returncode, 1)
        self.assertIn("job AAAA-1 is held", r.stderr)
        self.assertIn("dropped job AAAA-1 (held: ", self.ok("drop", "AAAA-1"))
        self.assertEqual(self.job_ids(), [])


if __name__ == "__main__":
    unittest.main()
