"""Config loading: `sluice check` summaries and FILE:LINE errors for every kind of mistake,
the command line, and SIGHUP reload (bad config keeps the old one; reload under load loses
nothing)."""
import os
import re
import signal
import smtplib
import subprocess
import tempfile
import threading
import unittest

from sluice_harness import BIN, SOURCE_DIR, Sluice, read_file

SERVER = """server {
  listen = { "127.0.0.1:2599" },
  hostname = "mx.example.test",
  domains = { "example.test" },
}
"""
RULES = """rule_set "main" {
  rule { name = "r1", actions = { store { maildir = "var/mail/{domain}/{user}" } } },
}
"""


def check(text):
    d = tempfile.mkdtemp(prefix="sluice-cfg-")
    path = os.path.join(d, "bad.lua")
    with open(path, "w") as f:
        f.write(text)
    r = subprocess.run([BIN, "check", "-c", path], capture_output=True, text=True, cwd=d)
    return path, r


ACTION_SERVER = ('server { listen = { "127.0.0.1:2599" }, domains = { "example.test" } }\n'
                 'rule_set "main" { rule { name = "r", actions = {\n%s\n} } }\n')


def assert_action_errors(tc, cases):
    """Each (action source, fragment): `sluice check` fails at the action's line (3) with the
    fragment in the message."""
    for action, fragment in cases:
        path, r = check(ACTION_SERVER % action)
        tc.assertEqual(r.returncode, 1, action)
        tc.assertTrue(r.stderr.startswith(path + ":3: "), r.stderr)
        tc.assertIn(fragment, r.stderr)


class CheckWarnings(unittest.TestCase):
    """Configs that load but surely do not do what their author meant: `sluice check` exits 0,
    prints the rules, and says so on stderr with the line."""

    def warnings(self, text, env=None):
        d = tempfile.mkdtemp(prefix="sluice-cfg-")
        path = os.path.join(d, "warn.lua")
        with open(path, "w") as f:
            f.write(text)
        r = subprocess.run([BIN, "check", "-c", path], capture_output=True, text=True,
                           env=env if env is not None else os.environ)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("rule set", r.stdout)
        return path, [l for l in r.stderr.splitlines() if ": warning: " in l]

    SERVER = ('server { listen = { "127.0.0.1:2599" }, domains = { "example.test", '
              '".sub.test" } }\n')

    def rules(self, rule):
        return self.SERVER + 'rule_set "main" {\n  %s,\n  rule { name = "all", actions = {\n'\
            '    store { maildir = "var/mail/{domain}/{user}" } } },\n}\n' % rule

    def test_a_clean_config_has_none(self):
        _, w = self.warnings(self.rules('rule { name = "r", recipients = { "a@example.test", '
                                        '"x.sub.test", ".sub.test" }, actions = { stop {} } }'))
        self.assertEqual(w, [])

    def test_wildcard_recipient(self):
        path, w = self.warnings(self.rules('rule { name = "r", recipients = { "*@example.test" }, '
                                           'actions = { stop {} } }'))
        self.assertEqual(w, [path + ":3: warning: rule 'r': recipient '*@example.test' matches "
                             "only that literal mailbox (recipients have no wildcards; "
                             "\"example.test\" is the whole domain)"])

    def test_recipient_domain_not_accepted(self):
        path, w = self.warnings(self.rules('rule { name = "r", recipients = { "b@other.test", '
                                           '"example.test", ".example.test", "sub.test" }, '
                                           'actions = { stop {} } }'))
        self.assertEqual(w, [path + ":3: warning: rule 'r': recipient '%s' is in no domain of "
                             "server.domains: RCPT refuses it (550 5.7.1), so this never matches"
                             % t for t in ("b@other.test", ".example.test", "sub.test")])

    def test_actions_after_stop(self):
        path, w = self.warnings(self.rules('rule { name = "r", actions = { stop {},\n'
                                           '    add_header { name = "X-A", value = "1" } } }'))
        self.assertEqual(w, [path + ":4: warning: rule 'r': add_header (line 4) and what follows "
                             "come after stop {} (line 3) and never run"])

    def test_s3_without_credentials_in_the_environment(self):
        env = {k: v for k, v in os.environ.items() if k not in ("S3_KEY", "S3_SECRET")}
        text = self.rules('rule { name = "r", actions = { s3 { endpoint = "http://127.0.0.1:1", '
                          'bucket = "mail", access_key_env = "S3_KEY", '
                          'secret_key_env = "S3_SECRET" } } }')
        path, w = self.warnings(text, env)
        self.assertEqual(w, [path + ":3: warning: rule 'r': s3: the credential variables S3_KEY "
                             "and S3_SECRET are not set in this environment: every upload will "
                             "fail until the service has them"])
        _, w = self.warnings(text, dict(env, S3_KEY="k"))
        self.assertIn("variable S3_SECRET is not set", w[0])
        _, w = self.warnings(text, dict(env, S3_KEY="k", S3_SECRET="s"))
        self.assertEqual(w, [])

    def test_dmarc_reports_sent_nowhere(self):
        text = self.SERVER + ('dmarc_reports { org_name = "E", email = "d@example.test", '
                              'send = true }\n') + RULES
        path, w = self.warnings(text)
        self.assertEqual(w, [path + ":2: warning: dmarc_reports { send = true } but server "
                             "{ bounce_relay } is not set: the reports have nowhere to go and "
                             "are not sent"])
        _, w = self.warnings(text.replace('".sub.test" }', '".sub.test" }, bounce_relay = '
                                          '"127.0.0.1:25"'))
        self.assertEqual(w, [])


class CheckErrors(unittest.TestCase):
    def assertConfigError(self, text, line, fragment):
        path, r = check(text)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        first = r.stderr.strip().splitlines()[0]
        self.assertTrue(first.startswith("%s:%d: " % (path, line)),
                        "want %s:%d, got: %s" % (path, line, first))
        self.assertIn(fragment, first)

    def test_unknown_server_key(self):
        self.assertConfigError(SERVER.replace("hostname", "hostnme") + RULES, 1,
                               "unknown key 'hostnme'")

    def test_wrong_type(self):
        self.assertConfigError(SERVER.replace('"mx.example.test"', "42") + RULES, 1,
                               "'hostname' must be a string")

    def test_listen_backlog_out_of_range(self):
        for value in ("0", "65536", "-1"):
            self.assertConfigError(SERVER.replace("}\n", "  listen_backlog = %s,\n}\n" % value, 1)
                                   + RULES, 1, "field 'listen_backlog' must be between 1 and "
                                   "65535, got " + value)

    def test_bad_log_level(self):
        self.assertConfigError(SERVER.replace("}\n", '  log_level = "loud",\n}\n', 1) + RULES, 1,
                               'server: log_level must be "error", "warning", "info" or '
                               '"debug", got "loud"')

    def test_bad_listen_address(self):
        self.assertConfigError(SERVER.replace("127.0.0.1:2599", "localhost") + RULES, 1,
                               "listen address 'localhost'")

    def test_duplicate_rule_names(self):
        self.assertConfigError(SERVER + 'rule_set "main" {\n'
                               '  rule { name = "a", actions = { stop {} } },\n'
                               '  rule { name = "a", actions = { stop {} } },\n}\n', 8,
                               "duplicate rule name 'a'")

    def test_unknown_action(self):
        self.assertConfigError(SERVER + 'rule_set "main" {\n  rule { name = "a",\n'
                               '    actions = { sotre { maildir = "x" } } },\n}\n', 8, "sotre")

    def test_misspelled_action_names_the_closest_and_lists_the_valid_ones(self):
        path, r = check(SERVER + 'rule_set "main" { rule { name = "a", actions = {\n'
                        '  add_headr { name = "X-A", value = "1" } } } }\n')
        self.assertEqual(r.returncode, 1)
        first = r.stderr.strip().splitlines()[0]
        self.assertEqual(first, path + ":7: unknown block or action 'add_headr' (did you mean "
                         "'add_header'?); blocks: dmarc, dmarc_reports, dns, receipt_filter, "
                         "rule, rule_set, scan, server; actions: add_header, bounce, "
                         "bounce_on_dmarc_fail, dmarc_report_ingest, drop, lmtp, lua, relay, "
                         "replace_recipient, s3, stop, store, webhook")
        self.assertNotIn("nil value", r.stderr)

    def test_misspelled_block(self):
        self.assertConfigError("servr {\n}\n" + RULES, 1,
                               "unknown block or action 'servr' (did you mean 'server'?)")
        self.assertConfigError(SERVER + 'rule_sett "main" { }\n', 6,
                               "unknown block or action 'rule_sett' (did you mean 'rule_set'?)")

    def test_unknown_name_far_from_any_gets_the_list_only(self):
        path, r = check(SERVER + "frobnicate { }\n" + RULES)
        first = r.stderr.strip().splitlines()[0]
        self.assertTrue(first.startswith(path + ":6: unknown block or action 'frobnicate'; "
                                         "blocks: "), first)
        self.assertNotIn("did you mean", first)

    def test_errors_name_their_block(self):
        rules = 'rule_set "main" { rule { name = "a", actions = { stop {} } } }\n'
        for text, line, fragment in (
                (SERVER.replace("}\n", '  tls = { cert = "c.pem" },\n}\n', 1) + RULES, 1,
                 "server.tls: missing required field 'key'"),
                (SERVER + 'rule_set "main" { rule { name = "a", actions = {\n'
                 '  add_header { name = "X-A" } } } }\n', 7,
                 "add_header: missing required field 'value'"),
                (SERVER + 'dns { timeout_ms = "soon" }\n' + rules, 6,
                 "dns: field 'timeout_ms' must be an integer, got string"),
                (SERVER + 'scan { timeout_ms = "soon" }\n' + rules, 6,
                 "scan: field 'timeout_ms' must be an integer, got string"),
                (SERVER + 'dmarc_reports { org_name = "Example" }\n' + rules, 6,
                 "dmarc_reports: missing required field 'email'"),
                (SERVER + 'receipt_filter { name = "f" }\n' + rules, 6,
                 "receipt_filter: missing required field 'policy'"),
                (SERVER + 'rule_set "main" { rule { name = 5, actions = { stop {} } } }\n', 6,
                 "rule: field 'name' must be a string, got number")):
            with self.subTest(fragment=fragment):
                self.assertConfigError(text, line, fragment)

    def test_dmarc_reports_errors_carry_one_position(self):
        path, r = check(SERVER + 'dmarc_reports { org_name = "Example" }\n' + RULES)
        first = r.stderr.strip().splitlines()[0]
        self.assertEqual(first.count(path), 1, first)
        self.assertConfigError(SERVER + 'dmarc_reports { org_name = "E", email = "d@x.test" }\n'
                               'dmarc_reports { org_name = "E", email = "d@x.test" }\n' + RULES,
                               7, "dmarc_reports { } is given twice (first at line 6)")

    def test_unknown_template_variable(self):
        self.assertConfigError(SERVER + 'rule_set "main" { rule { name = "a", actions = {\n'
                               '  store { maildir = "var/{domian}/{user}" } } } }\n', 7,
                               "unknown template variable '{domian}'")

    def test_action_unknown_key(self):
        self.assertConfigError(SERVER + 'rule_set "main" { rule { name = "a", actions = {\n'
                               '  store { mailbox = "x" } } } }\n', 7, "unknown key 'mailbox'")

    def test_bad_header_name_and_value(self):
        self.assertConfigError(SERVER + 'rule_set "main" { rule { name = "a", actions = {\n'
                               '  add_header { name = "X Bad", value = "v" } } } }\n', 7,
                               "must match [A-Za-z0-9-]")
        self.assertConfigError(SERVER + 'rule_set "main" { rule { name = "a", actions = {\n'
                               '  add_header { name = "X-Ok", value = "a\\r\\nBcc: x" } } } }\n',
                               7, "without CR/LF")

    def test_bad_regex_condition(self):
        self.assertConfigError(SERVER + 'rule_set "main" {\n rule { name = "a",\n'
                               '  when = { subject = { regex = "(" } }, actions = {} } }\n', 7,
                               "bad regex")

    def test_bad_condition_values(self):
        for cond, frag in (('spf = "MAYBE"', "'MAYBE' is not one of"),
                           ('client_ip = "10.0.0.1/8"', "not an IPv4/IPv6 network"),
                           ('colour = "red"', "unknown condition 'colour'"),
                           ('size = { gte = 1 }', "unknown key 'gte'"),
                           ('tls = "yes"', "expected true or false")):
            self.assertConfigError(SERVER + 'rule_set "main" {\n rule { name = "a", when = { %s },'
                                   ' actions = {} } }\n' % cond, 7, frag)

    def test_top_level_blocks_once_and_with_a_table(self):
        self.assertConfigError(SERVER + RULES + 'dns {}\ndns {}\n', 10,
                               "dns { } is given twice (first at line 9)")
        self.assertConfigError(SERVER + RULES + 'scan "x"\n', 9, "scan expects a table")
        self.assertConfigError(SERVER + RULES + 'dmarc { tree_walk = 1 }\n', 9, "tree_walk")

    def test_bad_receipt_filter(self):
        self.assertConfigError(SERVER + 'receipt_filter { name = "f", policy = "deny", '
                               'cidr = { "10.0.0.0/8" } }\n' + RULES, 6, "policy must be")

    def test_bad_tls_policy_and_stop_scope(self):
        self.assertConfigError(SERVER + 'rule_set "main" {\n rule { name = "a", tls = "always",'
                               ' actions = {} } }\n', 7, 'tls must be "optional" or "require"')
        self.assertConfigError(SERVER + 'rule_set "main" {\n rule { name = "a", '
                               'actions = { stop { scope = "all" } } } }\n', 7, "scope must be")

    def test_lua_syntax_and_runtime_errors(self):
        self.assertConfigError(SERVER + RULES + "\nrule_set 'x' {{{\n", 11, "near <eof>")
        self.assertConfigError(SERVER + RULES + "\nrule_set 'x' { = }\n", 10, "unexpected symbol")
        self.assertConfigError(SERVER + RULES + "local x = nil\nx.y = 1\n", 10,
                               "attempt to index")

    def test_structural_errors(self):
        path, r = check(RULES)
        self.assertEqual(r.returncode, 1)
        self.assertIn("no server { ... } block", r.stderr)
        self.assertConfigError(SERVER, 1, "no rule_set")
        self.assertConfigError(SERVER + RULES + RULES, 9, 'rule_set "main" is defined twice')
        self.assertConfigError(SERVER + RULES + RULES.replace('"main"', '"other"'), 1,
                               "names no rule set and there are 2")
        self.assertConfigError(SERVER.replace('listen = { "127.0.0.1:2599" }',
                                              'listen = { { address = "127.0.0.1:2599", '
                                              'rule_set = "nope" } }') + RULES, 1,
                               'unknown rule set "nope"')

    def test_runaway_config_is_stopped(self):
        self.assertConfigError(SERVER + RULES + "while true do end\n", 9, "ran too long")

    def test_sandboxed_config_has_no_os_execute_or_io(self):
        self.assertConfigError(SERVER + RULES + 'os.execute("true")\n', 9, "execute")
        self.assertConfigError(SERVER + RULES + 'io.open("/etc/passwd")\n', 9, "io")

    def test_missing_file(self):
        r = subprocess.run([BIN, "check", "-c", "/nonexistent/sluice.lua"], capture_output=True,
                           text=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn("/nonexistent/sluice.lua: cannot read config", r.stderr)

    def test_directory_is_no_config(self):
        d = tempfile.mkdtemp(prefix="sluice-cfg-")
        r = subprocess.run([BIN, "check", "-c", d], capture_output=True, text=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn(d + ": cannot read config", r.stderr)

    def test_hash_line_and_byte_order_mark_are_skipped_line_numbers_kept(self):
        # As luaL_loadfile does: the file is read once (and hashed), then compiled from memory.
        for head in ("#!/usr/sbin/sluice check -c\n", "\ufeff", "\ufeff# comment\n"):
            text = head + SERVER + RULES + "while true do end\n"
            line = 9 + head.count("\n")
            self.assertConfigError(text, line, "ran too long")


class CheckSummary(unittest.TestCase):
    def test_summary_lists_rule_sets_rules_conditions_actions_in_order(self):
        path, r = check(SERVER + """
receipt_filter { name = "spammers", policy = "block", cidr = { "192.0.2.0/24" } }
rule_set "main" {
  rule { name = "dmarc", when = { dmarc = "FAIL", dmarc_policy = "REJECT" },
         actions = { add_header { name = "X-Bad", value = "yes" }, stop {} } },
  rule { name = "keep", recipients = { "a@example.test", ".example.test" },
         unless = { sender = "<>" },
         actions = { store { maildir = "var/mail/{domain}/{user}" } } },
}
""")
        self.assertEqual(r.returncode, 0, r.stderr)
        out = r.stdout
        self.assertIn(": OK", out)
        self.assertIn('receipt_filter "spammers" (line 7): block 192.0.2.0/24', out)
        self.assertRegex(out, r'(?s)1\. dmarc \(line 9\).*when dmarc=FAIL; dmarc_policy=REJECT'
                              r'.*1\) add_header X-Bad: yes.*2\) stop scope=rule_set'
                              r'.*2\. keep \(line 11\).*recipients: a@example.test, .example.test'
                              r'.*unless sender=<>.*1\) store maildir=var/mail/\{domain\}/\{user\}')

    def test_examples_check_clean(self):
        examples = os.path.join(os.path.abspath(SOURCE_DIR), "examples")
        for name in sorted(os.listdir(examples)):
            if name.endswith(".lua"):
                r = subprocess.run([BIN, "check", "-c", os.path.join(examples, name)],
                                   capture_output=True, text=True, cwd=tempfile.mkdtemp())
                # TLS files of the quick start are made by `make run`; everything else is OK,
                # and an example a user copies draws no warning.
                if r.returncode != 0:
                    self.assertIn("TLS", r.stderr, name + ": " + r.stderr)
                self.assertNotIn("warning:", r.stderr, name)


class CommandLine(unittest.TestCase):
    def test_version_help_and_unknown(self):
        r = subprocess.run([BIN, "--version"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^sluice \d+\.\d+")
        r = subprocess.run([BIN, "--help"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0)
        self.assertIn("serve -c FILE", r.stdout)
        r = subprocess.run([BIN, "frobnicate"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)
        self.assertIn("unknown command", r.stderr)

    def test_serve_with_bad_config_exits_1_with_file_line(self):
        path, _ = check(SERVER + "rule { }\n")
        r = subprocess.run([BIN, "serve", "-c", path], capture_output=True, text=True,
                           timeout=20)
        self.assertEqual(r.returncode, 1)
        self.assertIn(path + ":6:", r.stderr)


VERSIONED = """rule_set "main" {
  rule { name = "r", actions = {
    add_header { name = "X-Version", value = "%s" },
    store { maildir = "var/mail/{domain}/{user}" } } },
}
"""


class Reload(unittest.TestCase):
    def setUp(self):
        self.s = Sluice(rules=VERSIONED % "v0").start()
        self.addCleanup(self.s.stop)

    def send(self):
        with smtplib.SMTP("127.0.0.1", self.s.port, timeout=10) as c:
            c.sendmail("a@example.net", ["user@example.test"], b"Subject: r\r\n\r\nb\r\n")

    def versions(self):
        return [re.findall(rb"X-Version: (\S+)\r\n", read_file(f))
                for f in self.s.maildir("example.test", "user")]

    def reload(self, rules, expect):
        with open(self.s.config_path) as f:
            text = f.read()
        text = re.sub(r'rule_set "main".*', lambda m: rules, text, flags=re.S)
        self.s.write_config(text)
        start = len(self.s.read_log())
        self.s.signal(signal.SIGHUP)
        self.s.wait_log(expect, start=start)

    def test_bad_config_keeps_the_old_one(self):
        self.reload('rule_set "main" { rule { name = "r", actions = { nope {} } } }\n',
                    r"reload failed, keeping the running config: .*sluice\.lua:\d+:")
        self.send()
        self.assertEqual(self.versions(), [[b"v0"]])
        self.reload(VERSIONED % "v1", r"config reloaded")
        self.send()
        self.assertEqual(sorted(self.versions()), [[b"v0"], [b"v1"]])

    def test_reload_under_load_loses_nothing(self):
        acked, errors, stop = [], [], threading.Event()

        def sender():
            with smtplib.SMTP("127.0.0.1", self.s.port, timeout=30) as c:
                while not stop.is_set():
                    try:
                        c.sendmail("a@example.net", ["user@example.test"],
                                   b"Subject: load\r\n\r\nb\r\n")
                        acked.append(1)
                    except smtplib.SMTPException as e:
                        errors.append(e)
                        return

        threads = [threading.Thread(target=sender) for _ in range(3)]
        for t in threads:
            t.start()
        for v in range(1, 11):
            self.reload(VERSIONED % ("v%d" % v), r"generation %d\b" % v)
        stop.set()
        for t in threads:
            t.join(30)
        self.assertEqual(errors, [])
        versions = self.versions()
        self.assertEqual(len(versions), len(acked))
        self.assertTrue(all(len(v) == 1 for v in versions), "each copy has exactly one version")
        self.assertGreater(len(set(v[0] for v in versions)), 1)


if __name__ == "__main__":
    unittest.main()
