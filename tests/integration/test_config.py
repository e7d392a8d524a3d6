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
                # TLS files of the quick start are made by `make run`; everything else is OK.
                if r.returncode != 0:
                    self.assertIn("TLS", r.stderr, name + ": " + r.stderr)


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
