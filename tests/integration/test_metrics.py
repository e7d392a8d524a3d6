"""The Prometheus endpoint's counters against what really happened, over real SMTP sessions
and real webhook and relay receivers: every publish outcome (success, failure, expired) counted
once at the rule-set, rule and action level, for in-session and post-acceptance actions under
each failure policy."""
import hashlib
import os
import re
import shutil
import signal
import smtplib
import socket
import ssl
import time
import unittest

from auth_fixtures import Keys, message, start_dns
from prom import metrics
from dns_harness import Blackhole
from sluice_harness import SOURCE_DIR, Sluice, free_port, tls_client_context, wait_for
from webhook_sink import WebhookSink

OUTCOMES = ("success", "failure", "expired")

RULES = """
rule_set "main" {
  rule { name = "tag", actions = { add_header { name = "X-Tag", value = "t" } } },
  rule { name = "work", recipients = { "user@example.test" }, actions = {
    store { maildir = "var/mail/{domain}/{user}" },
    %s,
  } },
  rule { name = "after", actions = { add_header { name = "X-After", value = "a" } } },
}
"""

def with_metrics(make):
    """make(server_extra) -> a Sluice not started; started with a metrics port that is not
    its SMTP port (both come from free_port, which may hand out the same one twice)."""
    while True:
        mport = free_port()
        s = make('metrics = "127.0.0.1:%d",' % mport)
        if s.port != mport:
            return s, mport


MSG = b"From: a@example.net\r\nSubject: counted\r\n\r\nbody\r\n"


def send(s):
    """One message to user@; the reply code to DATA."""
    with smtplib.SMTP("127.0.0.1", s.port, timeout=10) as c:
        try:
            c.sendmail("a@example.net", ["user@example.test"], MSG)
            return 250
        except smtplib.SMTPDataError as e:
            return e.smtp_code


class CountersAgree(unittest.TestCase):
    """Each case: a rule whose second action fails, between two rules that succeed; two
    messages; then the levels must add up per outcome and the failing action type must show
    exactly the failures (and expiries) that happened."""
    N = 2

    def run_case(self, action, policy, settle, expect, files=None):
        act = action[:-1] + ', on_failure = "%s" }' % policy
        s, mport = with_metrics(lambda extra: Sluice(
            rules=RULES % act, tls=False,
            server_extra='retry_initial_ms = 100, retry_max_ms = 200, ' + extra))
        for name, text in (files or {}).items():
            path = os.path.join(s.dir, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(text)
        s.start()
        self.addCleanup(s.stop)
        codes = [send(s) for _ in range(self.N)]
        self.assertEqual(codes, [expect["reply"]] * self.N, s.read_log())
        # Post-acceptance outcomes come from the retry scheduler: wait for them to settle.
        typ = action.split()[0]
        self.assertTrue(wait_for(lambda: settle(metrics(mport), typ), timeout=20),
                        s.read_log() + metrics(mport).text)
        m = metrics(mport)
        for o in OUTCOMES:
            set_total = m.value("sluice_rule_set_publish_%s_total" % o, rule_set="main")
            rules = m.total("sluice_rule_publish_%s_total" % o, rule_set="main")
            actions = m.total("sluice_action_publish_%s_total" % o)
            self.assertEqual((set_total, rules, actions), (set_total,) * 3,
                             "%s: rule set, sum of rules, sum of actions\n%s" % (o, m.text))
        # The rule's first action is a store that works: a success when the message was kept,
        # nothing when it was answered 4xx (nothing was kept).
        kept = expect["reply"] == 250
        for o in OUTCOMES:
            working = self.N if typ == "store" and o == "success" and kept else 0
            self.assertEqual(m.value("sluice_action_publish_%s_total" % o, action=typ),
                             expect.get(o, 0) * self.N + working, o + "\n" + m.text)
            self.assertEqual(m.value("sluice_rule_publish_%s_total" % o, rule_set="main",
                                     rule="work"),
                             (expect.get(o, 0) + (o == "success" and kept)) * self.N,
                             o + "\n" + m.text)
        self.assertEqual(m.value("sluice_rule_publish_success_total", rule_set="main",
                                 rule="tag"), self.N if kept else 0)
        return m

    # --- post-acceptance: webhook, relay ------------------------------------------------
    def failing_webhook(self):
        sink = WebhookSink(always_fail=True).start()
        self.addCleanup(sink.stop)
        return 'webhook { url = "%s", expire_after = "1s" }' % sink.url

    @staticmethod
    def failures(n):
        return lambda m, typ: m.value("sluice_action_publish_failure_total", action=typ) >= n

    @staticmethod
    def expiries(n):
        return lambda m, typ: m.value("sluice_action_publish_expired_total", action=typ) >= n

    def test_webhook_tempfail(self):
        m = self.run_case(self.failing_webhook(), "tempfail", self.failures(self.N),
                          {"reply": 451, "failure": 1})
        # The chain stopped at the failure: the rule after it never ran.
        self.assertEqual(m.value("sluice_rule_received_total", rule_set="main", rule="after"), 0)

    def test_webhook_continue(self):
        self.run_case(self.failing_webhook(), "continue", self.failures(self.N),
                      {"reply": 250, "failure": 1})

    def test_webhook_retry_until_expired(self):
        m = self.run_case(self.failing_webhook(), "retry", self.expiries(self.N),
                          {"reply": 250, "failure": 1, "expired": 1})
        # The spool's own counters: each job expired and is gone (whether it was retried
        # before depends on how long the attempts took: Spool tests retries).
        self.assertEqual(m.value("sluice_spool_expired_total", action="webhook"), self.N)
        self.assertEqual(m.value("sluice_spool_jobs", action="webhook"), 0)
        self.assertEqual(m.value("sluice_spool_oldest_job_age_seconds", action="webhook"), 0)

    def test_webhook_retried_to_success(self):
        # Only the first attempt of the first message fails: whichever attempt comes next
        # succeeds, the other message's first or this one's retry.
        sink = WebhookSink(fail_first=1).start()
        self.addCleanup(sink.stop)
        m = self.run_case('webhook { url = "%s" }' % sink.url, "retry",
                          lambda m, typ: m.value("sluice_action_publish_success_total",
                                                 action=typ) >= self.N,
                          {"reply": 250, "failure": 0.5, "success": 1})
        # Every attempt ran the action: the first failed ones and the successful retries.
        self.assertGreaterEqual(m.value("sluice_action_invocations_total", action="webhook"),
                                self.N + 1)

    def closed_relay(self):
        return 'relay { to = "127.0.0.1:%d", tls = "none", expire_after = "1s" }' % free_port()

    def test_relay_tempfail(self):
        self.run_case(self.closed_relay(), "tempfail", self.failures(self.N),
                      {"reply": 451, "failure": 1})

    def test_relay_continue(self):
        self.run_case(self.closed_relay(), "continue", self.failures(self.N),
                      {"reply": 250, "failure": 1})

    def test_relay_retry_until_expired(self):
        self.run_case(self.closed_relay(), "retry", self.expiries(self.N),
                      {"reply": 250, "failure": 1, "expired": 1})

    def test_commit_failure_counts_no_success(self):
        """The chain succeeds but the message cannot be made durable (its webhook job cannot
        be spooled): 451, nothing kept, so the store before it counts no success either."""
        sink = WebhookSink().start()
        self.addCleanup(sink.stop)
        s, mport = with_metrics(lambda extra: Sluice(tls=False, rules=RULES % (
            'webhook { url = "%s" }' % sink.url), server_extra=extra))
        s.start()
        self.addCleanup(s.stop)
        jobs = os.path.join(s.dir, "var", "spool", "jobs")
        shutil.rmtree(jobs, ignore_errors=True)
        os.makedirs(os.path.dirname(jobs), exist_ok=True)
        with open(jobs, "w") as f:
            f.write("a file where the spool's job directory should be\n")
        self.assertEqual(send(s), 451, s.read_log())
        m = metrics(mport)
        for o in OUTCOMES:
            self.assertEqual(m.value("sluice_rule_set_publish_%s_total" % o, rule_set="main"), 0,
                             o + "\n" + m.text)
            self.assertEqual(m.total("sluice_action_publish_%s_total" % o), 0, o)
        self.assertEqual(s.all_stored(), [])
        self.assertEqual(sink.requests, [])

    # --- in the session: a failing Lua script, a Maildir that cannot be made --------------
    LUA = {"fail.lua": 'function handler() error("boom") end\n'}
    NOTADIR = {"var/notadir": "a file where a directory should be\n"}

    def in_session(self, action, policy, reply, files):
        self.run_case(action, policy, self.failures(self.N), {"reply": reply, "failure": 1},
                      files)

    def test_lua_tempfail(self):
        self.in_session('lua { script = "fail.lua" }', "tempfail", 451, self.LUA)

    def test_lua_continue(self):
        self.in_session('lua { script = "fail.lua" }', "continue", 250, self.LUA)

    def test_lua_drop(self):
        self.in_session('lua { script = "fail.lua" }', "drop", 250, self.LUA)

    def test_store_tempfail(self):
        self.in_session('store { maildir = "var/notadir/{user}" }', "tempfail", 451,
                        self.NOTADIR)

    def test_store_continue(self):
        self.in_session('store { maildir = "var/notadir/{user}" }', "continue", 250,
                        self.NOTADIR)


class BuildAndConfig(unittest.TestCase):
    def setUp(self):
        self.s, self.mport = with_metrics(lambda extra: Sluice(tls=False, server_extra=extra))
        self.s.start()
        self.addCleanup(self.s.stop)

    def config_sha256(self):
        with open(self.s.config_path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()

    def hash_label(self, m):
        [(labels, v)] = m.rows("sluice_config_hash_info")
        self.assertEqual(v, 1)
        return labels["sha256"]

    def reload(self, text):
        self.s.write_config(text)
        start = len(self.s.read_log())
        self.s.signal(signal.SIGHUP)
        self.s.wait_log(r"config reloaded|reload failed", start=start)

    def test_build_info(self):
        m = metrics(self.mport)
        [(labels, v)] = m.rows("sluice_build_info")
        self.assertEqual(v, 1)
        with open(os.path.join(SOURCE_DIR, "CMakeLists.txt")) as f:
            version = re.search(r"project\(sluice VERSION (\S+)", f.read()).group(1)
        self.assertEqual(labels["version"], version)
        self.assertEqual(labels["lua"], "5.4")
        self.assertRegex(labels["openssl"], r"^\d+\.\d+")
        self.assertRegex(labels["libevent"], r"^\d+\.\d+")
        self.assertEqual(m.types["sluice_build_info"], "gauge")

    def test_reload_success_and_failure(self):
        m = metrics(self.mport)
        self.assertEqual(m.value("sluice_config_reloads_total", result="success"), 0)
        self.assertEqual(m.value("sluice_config_reloads_total", result="failure"), 0)
        self.assertEqual(m.value("sluice_config_last_reload_successful"), 1)
        started = m.value("sluice_config_last_reload_success_timestamp_seconds")
        self.assertLessEqual(abs(started - time.time()), 60)
        first = self.config_sha256()
        self.assertEqual(self.hash_label(m), first)

        with open(self.s.config_path) as f:
            good = f.read()
        time.sleep(1.1)  # the timestamp has a resolution of one second
        changed = good + "\n-- changed\n"
        self.reload(changed)
        m = metrics(self.mport)
        self.assertEqual(m.value("sluice_config_reloads_total", result="success"), 1)
        self.assertEqual(m.value("sluice_config_reloads_total", result="failure"), 0)
        reloaded = m.value("sluice_config_last_reload_success_timestamp_seconds")
        self.assertGreater(reloaded, started)
        second = self.config_sha256()
        self.assertNotEqual(second, first)
        self.assertEqual(self.hash_label(m), second)

        # A broken config is refused: the running one, its hash and its time stay.
        self.reload(good + "\nrule_set \"main\" {\n")
        m = metrics(self.mport)
        self.assertEqual(m.value("sluice_config_reloads_total", result="success"), 1)
        self.assertEqual(m.value("sluice_config_reloads_total", result="failure"), 1)
        self.assertEqual(m.value("sluice_config_last_reload_successful"), 0)
        self.assertEqual(m.value("sluice_config_last_reload_success_timestamp_seconds"),
                         reloaded)
        self.assertEqual(self.hash_label(m), second)
        # A config that cannot be read fails the same way.
        os.chmod(self.s.config_path, 0)
        if os.access(self.s.config_path, os.R_OK):  # root reads it anyway
            os.remove(self.s.config_path)
        start = len(self.s.read_log())
        self.s.signal(signal.SIGHUP)
        self.s.wait_log(r"reload failed[^\n]*cannot read config", start=start)
        m = metrics(self.mport)
        self.assertEqual(m.value("sluice_config_reloads_total", result="failure"), 2)
        self.assertEqual(self.hash_label(m), second)
        if os.path.exists(self.s.config_path):
            os.chmod(self.s.config_path, 0o644)
        # So does one whose TLS certificate cannot be loaded.
        self.reload(good.replace("server {", 'server {\n  tls = { cert = "var/none.pem", '
                                 'key = "var/none.pem" },', 1))
        m = metrics(self.mport)
        self.assertEqual(m.value("sluice_config_reloads_total", result="failure"), 3)
        self.assertEqual(self.hash_label(m), second)

        self.reload(good)
        m = metrics(self.mport)
        self.assertEqual(m.value("sluice_config_reloads_total", result="success"), 2)
        self.assertEqual(m.value("sluice_config_last_reload_successful"), 1)
        self.assertEqual(self.hash_label(m), first)


class Smtp(unittest.TestCase):
    def setUp(self):
        self.s, self.mport = with_metrics(lambda extra: Sluice(
            tls=False, server_extra='max_message_size = 4000, ' + extra))
        self.s.start()
        self.addCleanup(self.s.stop)

    def session(self):
        c = self.s.raw()
        c.expect(220)
        c.expect(250, "EHLO client.example.net\r\n")
        return c

    def test_size_refused_at_mail_is_its_own_reason(self):
        c = self.session()
        c.expect(552, "MAIL FROM:<a@example.net> SIZE=4001\r\n")
        c.expect(501, "MAIL FROM:<a@example.net> SIZE=many\r\n")
        c.expect(250, "MAIL FROM:<a@example.net> SIZE=4000\r\n")
        c.expect(250, "RCPT TO:<user@example.test>\r\n")
        c.close()
        m = metrics(self.mport)
        self.assertEqual(m.value("sluice_smtp_mail_rejected_total", reason="size"), 1)
        self.assertEqual(m.value("sluice_smtp_mail_rejected_total", reason="syntax"), 1)
        # No recipient was refused: none had been given.
        self.assertEqual(m.total("sluice_smtp_recipients_rejected_total"), 0)

    def test_data_reply_histogram(self):
        for _ in range(3):
            self.assertEqual(send(self.s), 250)
        # Refused while reading DATA (too big): never handed to the rules, not in the histogram.
        c = self.session()
        c.expect(250, "MAIL FROM:<a@example.net>\r\n")
        c.expect(250, "RCPT TO:<user@example.test>\r\n")
        c.expect(354, "DATA\r\n")
        c.send(b"Subject: big\r\n\r\n" + (b"x" * 70 + b"\r\n") * 80 + b".\r\n")
        c.expect(552)
        c.close()
        m = metrics(self.mport)
        name = "sluice_data_reply_seconds"
        self.assertEqual(m.types[name], "histogram")
        buckets = m.rows(name + "_bucket")
        les = [labels["le"] for labels, _ in buckets]
        self.assertEqual(les[-1], "+Inf")
        bounds = [float(le) for le in les[:-1]]
        self.assertEqual(bounds, sorted(bounds))
        self.assertEqual(len(set(bounds)), len(bounds))
        counts = [v for _, v in buckets]
        self.assertEqual(counts, sorted(counts), "buckets must be cumulative")
        self.assertEqual(counts[-1], 3)
        self.assertEqual(m.value(name + "_count"), 3)
        self.assertGreater(m.value(name + "_sum"), 0)
        self.assertEqual(m.value("sluice_smtp_messages_refused_total"), 1)


class Verdicts(unittest.TestCase):
    def test_one_count_per_message_and_check_that_ran(self):
        keys = Keys()
        dns = start_dns(keys)
        self.addCleanup(dns.stop)
        s, mport = with_metrics(lambda extra: Sluice(
            server_extra="auth_checks = true," + extra, rules="""
dns { servers = { "127.0.0.1:%d" }, timeout_ms = 3000 }
rule_set "main" {
  rule { name = "store", actions = { store { maildir = "var/mail/{domain}/{user}" } } },
}
""" % dns.port))
        s.start()
        self.addCleanup(s.stop)
        for mail_from, frm in (("bounce@example.com", "a@example.com"),        # SPF pass
                               ("bounce@spf-fail.example.com", "a@spf-fail.example.com"),
                               ("bounce@example.com", "a@example.com")):
            with smtplib.SMTP("127.0.0.1", s.port, timeout=30) as c:
                c.sendmail(mail_from, ["u@example.test"], message(frm))
        m = metrics(mport)
        v = lambda check, result: m.value("sluice_verdicts_total", check=check, result=result)
        self.assertEqual((v("spf", "pass"), v("spf", "fail")), (2, 1))
        self.assertEqual((v("dmarc", "pass"), v("dmarc", "fail")), (2, 1))
        self.assertEqual(v("dkim", "gray"), 3)  # unsigned
        for check in ("spf", "dkim", "dmarc"):
            self.assertEqual(m.total("sluice_verdicts_total", check=check), 3, check)
        # No rule asked for a scan: spam and virus never ran.
        self.assertEqual(m.total("sluice_verdicts_total", check="spam"), 0)
        self.assertEqual(m.total("sluice_verdicts_total", check="virus"), 0)

    def test_scans_counted_checks_off_not(self):
        dead = free_port()
        s, mport = with_metrics(lambda extra: Sluice(tls=False, server_extra=extra, rules="""
scan { rspamd = "http://127.0.0.1:%d", clamd = "127.0.0.1:%d", timeout_ms = 3000 }
rule_set "main" {
  rule { name = "inbox", scan = true, actions = { store { maildir = "var/mail/{domain}/{user}" } } },
}
""" % (dead, dead)))
        s.start()
        self.addCleanup(s.stop)
        self.assertEqual(send(s), 250)
        m = metrics(mport)
        self.assertEqual(m.value("sluice_verdicts_total", check="spam",
                                 result="processing_failed"), 1)
        self.assertEqual(m.value("sluice_verdicts_total", check="virus",
                                 result="processing_failed"), 1)
        self.assertEqual(m.total("sluice_verdicts_total", check="spam"), 1)
        # auth_checks = false: SPF, DKIM and DMARC did not run.
        for check in ("spf", "dkim", "dmarc"):
            self.assertEqual(m.total("sluice_verdicts_total", check=check), 0, check)


class Spool(unittest.TestCase):
    def test_depth_and_oldest_age_per_action_type(self):
        sink = WebhookSink(always_fail=True).start()
        self.addCleanup(sink.stop)
        s, mport = with_metrics(lambda extra: Sluice(tls=False, rules=RULES % (
            'webhook { url = "%s" }' % sink.url), server_extra='retry_initial_ms = 100, '
            'retry_max_ms = 200, ' + extra))
        s.start()
        self.addCleanup(s.stop)
        for _ in range(2):
            self.assertEqual(send(s), 250)
        self.assertTrue(wait_for(lambda: metrics(mport).value(
            "sluice_spool_retries_total", action="webhook") >= 2))
        time.sleep(1.1)  # ages are whole seconds
        m = metrics(mport)
        self.assertEqual(m.value("sluice_spool_jobs", action="webhook"), 2)
        self.assertGreaterEqual(m.value("sluice_spool_oldest_job_age_seconds", action="webhook"), 1)
        self.assertEqual(m.value("sluice_spool_jobs", action="store"), 0)
        self.assertEqual(m.value("sluice_spool_expired_total", action="webhook"), 0)
        self.assertEqual(m.types["sluice_spool_jobs"], "gauge")
        # The receiver comes back: the spool drains.
        sink.always_fail = False
        self.assertTrue(wait_for(lambda: metrics(mport).value(
            "sluice_spool_jobs", action="webhook") == 0))
        m = metrics(mport)
        self.assertEqual(m.value("sluice_spool_oldest_job_age_seconds", action="webhook"), 0)
        self.assertEqual(m.value("sluice_action_publish_success_total", action="webhook"), 2)


class Dns(unittest.TestCase):
    def start(self, dns_port, timeout_ms=3000):
        s, mport = with_metrics(lambda extra: Sluice(
            tls=False, server_extra="auth_checks = true, workers = 1," + extra, rules="""
dns { servers = { "127.0.0.1:%d" }, timeout_ms = %d }
rule_set "main" {
  rule { name = "store", actions = { store { maildir = "var/mail/{domain}/{user}" } } },
}
""" % (dns_port, timeout_ms)))
        s.start()
        self.addCleanup(s.stop)
        return s, mport

    def mail(self, s, mail_from, frm):
        with smtplib.SMTP("127.0.0.1", s.port, timeout=30) as c:
            c.sendmail(mail_from, ["u@example.test"], message(frm))

    def test_answers_cache_hits_and_servfail(self):
        keys = Keys()
        dns = start_dns(keys)
        self.addCleanup(dns.stop)
        s, mport = self.start(dns.port)
        self.mail(s, "bounce@example.com", "a@example.com")
        first = metrics(mport)
        self.assertGreater(first.value("sluice_dns_queries_total", result="ok"), 0)
        self.assertEqual(first.value("sluice_dns_queries_total", result="timeout"), 0)
        # One worker: the same message again is answered from its cache, lookup for lookup.
        self.mail(s, "bounce@example.com", "a@example.com")
        second = metrics(mport)
        asked = first.total("sluice_dns_queries_total")
        self.assertEqual(second.total("sluice_dns_queries_total"), 2 * asked)
        self.assertEqual(second.value("sluice_dns_cache_hits_total") -
                         first.value("sluice_dns_cache_hits_total"), asked)
        self.mail(s, "x@servfail.example.org", "a@servfail.example.org")
        m = metrics(mport)
        self.assertGreater(m.value("sluice_dns_queries_total", result="servfail"), 0)

    def test_timeouts(self):
        hole = Blackhole()
        self.addCleanup(hole.close)
        s, mport = self.start(hole.port, timeout_ms=300)
        self.mail(s, "bounce@example.com", "a@example.com")
        m = metrics(mport)
        self.assertGreater(m.value("sluice_dns_queries_total", result="timeout"), 0)
        self.assertEqual(m.value("sluice_dns_queries_total", result="servfail"), 0)


class Tls(unittest.TestCase):
    def setUp(self):
        self.s, self.mport = with_metrics(lambda extra: Sluice(
            server_extra="command_timeout = 1," + extra))
        self.s.start()
        self.addCleanup(self.s.stop)

    def starttls(self):
        c = self.s.raw()
        c.expect(220)
        c.expect(250, "EHLO client.example.net\r\n")
        c.expect(220, "STARTTLS\r\n")
        return c

    def handshake(self, version):
        c = self.starttls()
        ctx = tls_client_context()
        ctx.minimum_version = ctx.maximum_version = version
        tls = ctx.wrap_socket(c.sock, server_hostname="mx.example.test")
        tls.sendall(b"QUIT\r\n")
        self.assertTrue(tls.recv(100).startswith(b"221"))
        tls.close()

    def failures(self, reason):
        return metrics(self.mport).value("sluice_tls_handshake_failures_total", reason=reason)

    def test_handshakes_by_version_and_failures_by_reason(self):
        self.handshake(ssl.TLSVersion.TLSv1_3)
        self.handshake(ssl.TLSVersion.TLSv1_2)
        self.handshake(ssl.TLSVersion.TLSv1_3)
        m = metrics(self.mport)
        self.assertEqual(m.value("sluice_tls_handshakes_total", version="TLSv1.3"), 2)
        self.assertEqual(m.value("sluice_tls_handshakes_total", version="TLSv1.2"), 1)
        self.assertEqual(m.value("sluice_smtp_tls_sessions_total"), 3)
        self.assertEqual(m.total("sluice_tls_handshake_failures_total"), 0)

        c = self.starttls()  # not TLS at all
        c.send(b"EHLO plain.example.net\r\n" * 4)
        self.assertTrue(c.closed())
        self.assertTrue(wait_for(lambda: self.failures("error") == 1))

        c = self.starttls()  # gone before a ClientHello
        c.sock.shutdown(socket.SHUT_WR)
        self.assertTrue(c.closed())
        self.assertTrue(wait_for(lambda: self.failures("closed") == 1))

        c = self.starttls()  # never says anything: command_timeout (1 s)
        self.assertTrue(c.closed(timeout=10))
        self.assertTrue(wait_for(lambda: self.failures("timeout") == 1))
        m = metrics(self.mport)
        self.assertEqual(m.total("sluice_tls_handshakes_total"), 3)
        self.assertEqual(m.total("sluice_tls_handshake_failures_total"), 3)


class Exposition(unittest.TestCase):
    def test_well_formed_after_traffic(self):
        """Without promtool (not on every machine): the checks of prom.Metrics.problems."""
        sink = WebhookSink(fail_first=1).start()
        self.addCleanup(sink.stop)
        s, mport = with_metrics(lambda extra: Sluice(tls=False, rules=RULES % (
            'webhook { url = "%s" }' % sink.url), server_extra='retry_initial_ms = 100, ' + extra))
        s.start()
        self.addCleanup(s.stop)
        self.assertEqual(send(s), 250)
        self.assertTrue(wait_for(lambda: metrics(mport).value(
            "sluice_action_publish_success_total", action="webhook") == 1))
        m = metrics(mport)
        self.assertEqual(m.problems(), [])
        # Every family has a HELP line too.
        for family in m.types:
            self.assertIn("# HELP %s " % family, m.text)


if __name__ == "__main__":
    unittest.main()
