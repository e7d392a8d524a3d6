"""examples/grafana/sluice.json and examples/prometheus/alerts.yml against a real Prometheus
scraping a real sluice: every dashboard query returns data, every alert evaluates, and every
metric name either uses is one sluice exports (a renamed metric breaks this test)."""
import json
import os
import re
import shutil
import smtplib
import subprocess
import tempfile
import unittest
import urllib.error
import urllib.parse
import urllib.request

from prom import metrics
from sluice_harness import SOURCE_DIR, Sluice, free_port, tls_client_context, wait_for
from webhook_sink import WebhookSink

PROMETHEUS = shutil.which("prometheus")
DASHBOARD = os.path.join(SOURCE_DIR, "examples", "grafana", "sluice.json")
ALERTS = os.path.join(SOURCE_DIR, "examples", "prometheus", "alerts.yml")

# A store that works for everyone, and a webhook that always fails for hook@, so that success,
# failure, retry and spool counters all move; the webhook keeps the default expire_after, so
# its job stays in the spool and the oldest-age gauge is not 0.
RULES = """
rule_set "main" {
  rule { name = "store", recipients = { "example.test" }, actions = {
    store { maildir = "var/mail/{domain}/{user}" } } },
  rule { name = "hook", recipients = { "hook@example.test" }, actions = {
    webhook { url = "%s" } } },
}
"""

NAME = re.compile(r"\b(sluice_[a-z0-9_]+)\b")


class PrivatePrometheus:
    """A Prometheus of its own on loopback (never the system service): its config, its TSDB
    under a temporary directory, scraping one target every second and evaluating rule_files."""

    def __init__(self, target, rule_files):
        self.dir = tempfile.mkdtemp(prefix="prometheus-")
        self.port = free_port()
        self.config = os.path.join(self.dir, "prometheus.yml")
        with open(self.config, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                    "rule_files:\n%s"
                    "scrape_configs:\n  - job_name: sluice\n"
                    "    static_configs:\n      - targets: ['%s']\n"
                    % ("".join("  - '%s'\n" % r for r in rule_files), target))
        self.log_path = os.path.join(self.dir, "prometheus.log")
        self.proc = None

    def start(self):
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [PROMETHEUS, "--config.file=" + self.config,
             "--storage.tsdb.path=" + os.path.join(self.dir, "data"),
             "--web.listen-address=127.0.0.1:%d" % self.port],
            stdout=self.log, stderr=self.log)
        if not wait_for(self.ready, timeout=60):
            raise AssertionError("prometheus not ready:\n" + self.read_log())
        return self

    def ready(self):
        if self.proc.poll() is not None:
            raise AssertionError("prometheus exited:\n" + self.read_log())
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/-/ready" % self.port,
                                        timeout=5) as r:
                return r.status == 200
        except OSError:
            return False

    def api(self, path, **params):
        """GET /api/v1/PATH; the decoded JSON answer, whatever its status (a bad query is
        HTTP 400 with status "error" and the reason)."""
        url = "http://127.0.0.1:%d/api/v1/%s?%s" % (self.port, path,
                                                     urllib.parse.urlencode(params))
        try:
            with urllib.request.urlopen(url, timeout=30) as r:
                return json.load(r)
        except urllib.error.HTTPError as e:
            return json.load(e)

    def query(self, expr):
        return self.api("query", query=expr)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.log.close()

    def read_log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")


def dashboard_targets(dash):
    """(panel title, target) of every panel, rows' nested panels included."""
    out = []
    for p in dash["panels"]:
        for q in p.get("panels", []) + [p]:
            out += [(q["title"], t) for t in q.get("targets", [])]
    return out


@unittest.skipUnless(PROMETHEUS, "prometheus not installed (Debian package, make test-deps)")
class Dashboard(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(DASHBOARD) as f:
            cls.dash = json.load(f)
        cls.sink = WebhookSink(always_fail=True).start()
        while True:
            cls.mport = free_port()
            cls.sluice = Sluice(rules=RULES % cls.sink.url, server_extra=(
                'metrics = "127.0.0.1:%d", retry_initial_ms = 200, retry_max_ms = 1000,'
                % cls.mport))
            if cls.sluice.port != cls.mport:
                break
        cls.target = "127.0.0.1:%d" % cls.mport
        cls.prom = PrivatePrometheus(cls.target, [ALERTS])
        try:
            cls.sluice.start()
            cls.prom.start()
            # The counters' zeros scraped first, so that rates see the traffic as an increase.
            if not wait_for(lambda: cls.value('up{job="sluice"}') == 1, timeout=60):
                raise AssertionError("prometheus never scraped sluice:\n" + cls.prom.read_log())
            cls.traffic()
            # Enough scrapes after the traffic for rates over a minute, and the failing
            # webhook's first failure counted.
            ok = wait_for(lambda: cls.value(
                'sluice_rule_set_publish_failure_total{rule_set="main"}') >= 1
                and cls.value('count_over_time(up{job="sluice"}[1m])') >= 5
                and cls.value('up{job="sluice"}') == 1, timeout=60)
            if not ok:
                raise AssertionError("prometheus has no samples of sluice:\n"
                                     + cls.prom.read_log() + cls.sluice.read_log())
        except BaseException:
            try:
                cls.tearDownClass()
            except Exception:
                pass  # the first error is the one to see
            raise

    @classmethod
    def tearDownClass(cls):
        cls.prom.stop()
        cls.sluice.stop()
        cls.sink.stop()

    @classmethod
    def traffic(cls):
        """Mail through both rules, over plain SMTP and STARTTLS."""
        for tls in (False, True):
            with smtplib.SMTP("127.0.0.1", cls.sluice.port, timeout=10) as c:
                if tls:
                    c.starttls(context=tls_client_context())
                c.sendmail("a@example.net", ["user@example.test", "hook@example.test"],
                           b"From: a@example.net\r\nSubject: dashboard\r\n\r\nbody\r\n")

    @classmethod
    def value(cls, expr):
        """The single value of an instant query, -1 when it has none."""
        r = cls.prom.query(expr)
        res = r.get("data", {}).get("result", [])
        return float(res[0]["value"][1]) if r.get("status") == "success" and res else -1

    def substitute(self, expr):
        """A dashboard expression as Grafana would send it for one concrete selection. The
        rate window is wide enough to still hold the traffic on a slow, loaded machine."""
        for var, value in (("$__rate_interval", "5m"), ("$__interval", "5m"),
                           ("$instance", self.target), ("$rule_set", "main")):
            expr = expr.replace(var, value)
        self.assertNotIn("$", expr, "a dashboard variable the test does not know")
        return expr

    def test_every_panel_query_returns_data(self):
        targets = dashboard_targets(self.dash)
        self.assertGreater(len(targets), 20)
        for title, t in targets:
            expr = self.substitute(t["expr"])
            with self.subTest(panel=title, expr=expr):
                r = self.prom.query(expr)
                self.assertEqual(r.get("status"), "success", r)
                result = r["data"]["result"]
                self.assertTrue(result, "no data for %s" % expr)
                # Every {{label}} of the legend is a label of every series.
                for label in re.findall(r"\{\{\s*(\w+)\s*\}\}", t.get("legendFormat", "")):
                    for series in result:
                        self.assertIn(label, series["metric"], expr)

    def test_panels_see_the_traffic(self):
        """Not just series of zeros: the panels show what the mail did."""
        def by(expr, label):
            r = self.prom.query(self.substitute(expr))["data"]["result"]
            return {s["metric"].get(label): float(s["value"][1]) for s in r}

        exprs = {t["expr"]: t for _, t in dashboard_targets(self.dash)}
        received = [e for e in exprs if "sluice_rule_received_total" in e]
        self.assertEqual(len(received), 1)
        rules = by(received[0], "rule")
        self.assertGreater(rules.get("store", 0), 0, rules)
        self.assertGreater(rules.get("hook", 0), 0, rules)
        failures = [e for e in exprs if "sluice_action_publish_failure_total" in e]
        self.assertGreater(by(failures[0], "action").get("webhook", 0), 0)
        jobs = [e for e in exprs if e.startswith("sum by (action) (sluice_spool_jobs")]
        self.assertGreater(by(jobs[0], "action").get("webhook", 0), 0)
        tls = [e for e in exprs if "sluice_tls_handshakes_total" in e]
        self.assertGreater(sum(by(tls[0], "version").values()), 0)

    def test_variable_queries_find_values(self):
        for var in self.dash["templating"]["list"]:
            if var["type"] != "query":
                continue
            q = self.substitute(var["definition"])
            m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", q)
            self.assertTrue(m, q)
            with self.subTest(variable=var["name"]):
                r = self.prom.query("count by (%s) (%s)" % (m.group(2), m.group(1)))
                self.assertEqual(r.get("status"), "success", r)
                values = [s["metric"].get(m.group(2)) for s in r["data"]["result"]]
                want = {"instance": self.target, "rule_set": "main"}[var["name"]]
                self.assertIn(want, values)

    def alert_rules(self):
        r = self.prom.api("rules", type="alert")
        self.assertEqual(r.get("status"), "success", r)
        return [rule for g in r["data"]["groups"] for rule in g["rules"]]

    def test_every_alert_evaluates(self):
        with open(ALERTS) as f:
            names = re.findall(r"^\s*- alert: (\w+)", f.read(), re.M)
        self.assertGreaterEqual(len(names), 7)
        # Prometheus loaded every rule of the file and evaluated each one without error.
        self.assertTrue(wait_for(lambda: all(
            rule.get("lastEvaluation", "").startswith("2") and rule["health"] != "unknown"
            for rule in self.alert_rules()), timeout=30), self.alert_rules())
        rules = self.alert_rules()
        self.assertEqual(sorted(rule["name"] for rule in rules), sorted(names))
        for rule in rules:
            with self.subTest(alert=rule["name"]):
                self.assertEqual((rule["health"], rule.get("lastError", "")), ("ok", ""), rule)
                r = self.prom.query(rule["query"])
                self.assertEqual(r.get("status"), "success", r)
        # A healthy sluice pages nobody (the failing webhook is minutes away from any
        # threshold).
        firing = [a for rule in rules for a in rule.get("alerts", [])]
        self.assertEqual(firing, [])

    def test_every_metric_name_is_exported(self):
        exported = {name for name, _, _ in metrics(self.mport).samples}
        used = {}
        for title, t in dashboard_targets(self.dash):
            for name in NAME.findall(t["expr"]):
                used.setdefault(name, "panel " + title)
        for var in self.dash["templating"]["list"]:
            for name in NAME.findall(var.get("definition", "")):
                used.setdefault(name, "variable " + var["name"])
        for rule in self.alert_rules():
            for name in NAME.findall(rule["query"]):
                used.setdefault(name, "alert " + rule["name"])
        self.assertGreater(len(used), 25)
        missing = {n: where for n, where in used.items() if n not in exported}
        self.assertEqual(missing, {}, "used but not in sluice's /metrics")


if __name__ == "__main__":
    unittest.main()
