"""SPF with explicit client addresses (IPv4 and IPv6, loopback included) through the hidden
`sluice spf-query` command, against the same nsd zones as test_auth.py: the receiver only ever
sees 127.0.0.1 in tests, so this is where the mechanisms meet real non-loopback addresses."""
import os
import shutil
import subprocess
import tempfile
import unittest

from auth_fixtures import Keys, check_block, start_dns
from dns_harness import Blackhole
from sluice_harness import BIN

CONFIG = """
server { listen = { "127.0.0.1:1" }, hostname = "mx.example.test", domains = { "example.test" } }
dns { servers = { "127.0.0.1:%d" }, timeout_ms = %d }
rule_set "main" { }
"""

# (client ip, HELO, MAIL FROM, expected RFC 7208 result)
CASES = [
    ("192.0.2.5", "h.example.net", "a@spf-ip4.example.com", "pass"),
    ("198.51.100.1", "h.example.net", "a@spf-ip4.example.com", "fail"),
    ("2001:db8::5", "h.example.net", "a@spf-ip6.example.com", "pass"),
    ("2001:db9::5", "h.example.net", "a@spf-ip6.example.com", "fail"),
    ("192.0.2.5", "h.example.net", "a@spf-ip6.example.com", "fail"),
    ("192.0.2.80", "h.example.net", "a@spf-a.example.com", "pass"),
    ("2001:db8::80", "h.example.net", "a@spf-a.example.com", "pass"),
    ("192.0.2.81", "h.example.net", "a@spf-a.example.com", "fail"),
    ("192.0.2.25", "h.example.net", "a@spf-mx.example.com", "pass"),
    ("192.0.2.26", "h.example.net", "a@spf-mx.example.com", "fail"),
    ("192.0.2.9", "h.example.net", "a@spf-inc.example.com", "pass"),
    ("198.51.100.9", "h.example.net", "a@spf-inc.example.com", "fail"),
    ("192.0.2.9", "h.example.net", "a@spf-redirect.example.com", "pass"),
    ("198.51.100.9", "h.example.net", "a@spf-redirect.example.com", "fail"),
    ("192.0.2.77", "h.example.net", "a@spf-exists.example.com", "pass"),
    ("192.0.2.78", "h.example.net", "a@spf-exists.example.com", "fail"),
    ("192.0.2.78", "h.example.net", "alice@spf-macro.example.com", "pass"),
    ("192.0.2.78", "h.example.net", "bob@spf-macro.example.com", "fail"),
    ("192.0.2.9", "h.example.net", "a@spf-d3.example.com", "pass"),
    ("192.0.2.44", "h.example.net", "a@spf-i4.example.com", "pass"),
    ("192.0.2.45", "h.example.net", "a@spf-i4.example.com", "fail"),
    ("192.0.2.1", "h.example.net", "a@spf-soft.example.com", "pass"),
    ("192.0.2.2", "h.example.net", "a@spf-soft.example.com", "softfail"),
    ("192.0.2.2", "h.example.net", "a@spf-neutral.example.com", "neutral"),
    ("192.0.2.2", "h.example.net", "a@spf-loop.example.com", "permerror"),
    ("192.0.2.2", "h.example.net", "a@spf-many.example.com", "permerror"),
    ("192.0.2.2", "h.example.net", "a@spf-two.example.com", "permerror"),
    ("192.0.2.2", "h.example.net", "a@spf-perm.example.com", "permerror"),
    ("192.0.2.2", "h.example.net", "a@nospf.example.net", "none"),
    ("192.0.2.2", "h.example.net", "a@servfail.example.org", "temperror"),
    # Loopback clients get no free pass (libspf2 alone would say pass).
    ("127.0.0.1", "h.example.net", "a@spf-ip4.example.com", "fail"),
    ("::1", "h.example.net", "a@spf-ip6.example.com", "fail"),
    ("127.0.0.1", "h.example.net", "a@example.com", "pass"),
    # The null sender: the HELO identity.
    ("127.0.0.1", "helo.example.com", "", "pass"),
    ("192.0.2.2", "helo.example.com", "", "fail"),
    ("192.0.2.2", "[192.0.2.2]", "", "none"),
]


def spf_query(config, ip, helo, mail_from):
    r = subprocess.run([BIN, "spf-query", "-c", config, "--ip", ip, "--helo", helo,
                        "--from", mail_from], capture_output=True, text=True, timeout=60)
    if r.returncode != 0 or "ERROR: AddressSanitizer" in r.stderr or "runtime error" in r.stderr:
        raise AssertionError("spf-query failed: %s %s" % (r.returncode, r.stderr))
    return r.stdout.split()[0], r.stdout


class SpfQuery(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.keys = Keys()
        cls.dns = start_dns(cls.keys)
        cls.dir = tempfile.mkdtemp(prefix="sluice-spf-")
        cls.config = os.path.join(cls.dir, "sluice.lua")
        with open(cls.config, "w") as f:
            f.write(CONFIG % (cls.dns.port, 3000))

    @classmethod
    def tearDownClass(cls):
        cls.dns.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)
        shutil.rmtree(cls.keys.dir, ignore_errors=True)

    def test_cases(self):
        for ip, helo, mail_from, want in CASES:
            with self.subTest(ip=ip, mail_from=mail_from, helo=helo):
                got, out = spf_query(self.config, ip, helo, mail_from)
                self.assertEqual(got, want, out)

    def test_dead_resolver_is_temperror(self):
        hole = Blackhole()
        try:
            cfg = os.path.join(self.dir, "dead.lua")
            with open(cfg, "w") as f:
                f.write(CONFIG % (hole.port, 300))
            got, out = spf_query(cfg, "192.0.2.1", "h.example.net", "a@example.com")
            self.assertEqual(got, "temperror", out)
            self.assertIn("timeout", out)
        finally:
            hole.close()


class DnsConfig(unittest.TestCase):
    def check(self, text):
        return check_block(text)

    def test_valid(self):
        r = self.check('dns { servers = { "127.0.0.1:5353", "[::1]:53" }, timeout_ms = 500 }\n')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("auth checks (SPF, DKIM, DMARC): on; dns (line 2): 127.0.0.1:5353 [::1]:53,"
                      " timeout 500 ms", r.stdout)
        r = self.check("")
        self.assertIn("dns: servers of /etc/resolv.conf, timeout 2000 ms", r.stdout)

    def test_errors_name_the_line(self):
        for text, msg in [
                # (the server block is line 1)
                ('\ndns { servers = { "localhost:53" } }\n', ':3: dns: server \'localhost:53\''),
                ('dns { timeout_ms = 0 }\n', ":2: dns: field 'timeout_ms' must be between"),
                ('dns { server = "127.0.0.1:53" }\n', ":2: dns: unknown key 'server'"),
                ('dns {}\ndns {}\n', ":3: dns { } is given twice"),
                ('dns "x"\n', ":2: dns expects a table")]:
            with self.subTest(text=text):
                r = self.check(text)
                self.assertEqual(r.returncode, 1, r.stdout)
                self.assertIn(msg, r.stderr)


if __name__ == "__main__":
    unittest.main()
