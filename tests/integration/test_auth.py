"""SPF, DKIM and DMARC verdicts through real SMTP sessions into stored messages, against a real
DNS server (nsd) serving zones generated here. The client of every session is 127.0.0.1,
which sluice judges like any other address (test_spf_query.py covers other addresses)."""
import re
import shutil
import unittest
import urllib.request

from auth_fixtures import Keys, auth_sluice, header_fields, message, sign, start_dns
from dns_harness import Blackhole, free_port
from sluice_harness import Sluice, read_file

SPF_PASS_FROM = "bounce@example.com"       # ip4:127.0.0.1
SPF_FAIL_FROM = "bounce@spf-fail.example.com"

# A body with paragraphs, white space only lines, runs of white space and tabs, and the same
# body with only its white space changed (and empty lines added at its end).
WS_BODY = b"Dear  reader,\r\n\r\n \t \r\nTwo\tcolumns\there \r\n\r\nregards\r\n"
WS_BODY_CHANGED = (b"Dear \t reader,  \r\n\r\n\r\nTwo columns   here\r\n\r\n"
                   b"regards\t\r\n\r\n\r\n")

# (name, MAIL FROM, message maker, expected SPF, DKIM, DMARC, DMARC policy or None,
#  fragments expected in Authentication-Results)
CASES = [
    ("spf_pass_dmarc_pass", SPF_PASS_FROM, lambda k: message("a@example.com"),
     "PASS", "GRAY", "PASS", None,
     ["spf=pass", "smtp.mailfrom=bounce@example.com", "dkim=none", "dmarc=pass",
      "header.from=example.com"]),
    ("spf_fail", SPF_FAIL_FROM, lambda k: message("a@spf-fail.example.com"),
     "FAIL", "GRAY", "FAIL", "REJECT", ["spf=fail", "dmarc=fail", "policy.dmarc=reject"]),
    ("spf_softfail", "x@spf-soft.example.com", lambda k: message("a@spf-soft.example.com"),
     "FAIL", "GRAY", "FAIL", "REJECT", ["spf=softfail"]),
    ("spf_neutral", "x@spf-neutral.example.com", lambda k: message("a@pnone.example.com"),
     "GRAY", "GRAY", "GRAY", "NONE", ["spf=neutral", "dmarc=fail", "policy.dmarc=none"]),
    ("spf_none", "x@nospf.example.net", lambda k: message("a@example.net"),
     "GRAY", "GRAY", "GRAY", "NONE", ["spf=none", "dmarc=none", "header.from=example.net"]),
    ("spf_permerror", "x@spf-perm.example.com", lambda k: message("a@q.example.com"),
     "PROCESSING_FAILED", "GRAY", "FAIL", "QUARANTINE",
     ["spf=permerror", "policy.dmarc=quarantine"]),
    ("spf_loopback_not_listed", "x@spf-loopback.example.com", lambda k: message("a@q.example.com"),
     "FAIL", "GRAY", "FAIL", "QUARANTINE", ["spf=fail"]),
    ("dns_servfail", "x@servfail.example.org", lambda k: message("a@servfail.example.org"),
     "PROCESSING_FAILED", "GRAY", "PROCESSING_FAILED", None, ["spf=temperror", "dmarc=temperror"]),
    ("dkim_pass_relaxed", SPF_FAIL_FROM,
     lambda k: sign(message("a@example.com"), k.sel1_key, "example.com", "sel1"),
     "FAIL", "PASS", "PASS", None, ["dkim=pass header.d=example.com header.s=sel1", "dmarc=pass"]),
    ("dkim_pass_simple_length", SPF_FAIL_FROM,
     lambda k: sign(message("a@example.com"), k.sel1_key, "example.com", "sel1",
                    canon="simple/simple", length=True),
     "FAIL", "PASS", "PASS", None, ["dkim=pass header.d=example.com"]),
    ("dkim_pass_relaxed_simple", SPF_FAIL_FROM,
     lambda k: sign(message("a@example.com"), k.sel1_key, "example.com", "sel1",
                    canon="relaxed/simple"),
     "FAIL", "PASS", "PASS", None, ["dkim=pass header.d=example.com"]),
    ("dkim_ed25519", SPF_FAIL_FROM,
     lambda k: sign(message("a@example.com"), k.ed_key, "example.com", "ed",
                    alg="ed25519-sha256"),
     "FAIL", "PASS", "PASS", None, ["dkim=pass header.d=example.com header.s=ed"]),
    ("dkim_ed25519_altered", SPF_FAIL_FROM,
     lambda k: sign(message("a@example.com"), k.ed_key, "example.com", "ed",
                    alg="ed25519-sha256").replace(b"Hello.", b"Hallo."),
     "FAIL", "FAIL", "FAIL", "REJECT", ["dkim=fail", "header.s=ed"]),
    ("dkim_length_covers_prefix_only", SPF_FAIL_FROM,
     lambda k: sign(message("a@example.com"), k.sel1_key, "example.com", "sel1",
                    canon="simple/simple", length=True) + b"Appended after signing.\r\n",
     "FAIL", "PASS", "PASS", None, ["dkim=pass"]),
    ("dkim_body_altered", SPF_FAIL_FROM,
     lambda k: sign(message("a@example.com"), k.sel1_key, "example.com", "sel1")
     .replace(b"Hello.", b"Hallo."),
     "FAIL", "FAIL", "FAIL", "REJECT", ["dkim=fail", "header.s=sel1"]),
    # Body canonicalisation (RFC 6376 3.4): white space changed after signing is tolerated by
    # relaxed and not by simple; empty lines at the end count for neither.
    ("dkim_relaxed_tolerates_whitespace", SPF_FAIL_FROM,
     lambda k: sign(message("a@example.com", body=WS_BODY), k.sel1_key, "example.com", "sel1")
     .replace(WS_BODY, WS_BODY_CHANGED),
     "FAIL", "PASS", "PASS", None, ["dkim=pass header.d=example.com"]),
    ("dkim_simple_refuses_whitespace", SPF_FAIL_FROM,
     lambda k: sign(message("a@example.com", body=WS_BODY), k.sel1_key, "example.com", "sel1",
                    canon="relaxed/simple").replace(WS_BODY, WS_BODY_CHANGED),
     "FAIL", "FAIL", "FAIL", "REJECT", ["dkim=fail (body hash mismatch)"]),
    ("dkim_simple_ignores_final_empty_lines", SPF_FAIL_FROM,
     lambda k: sign(message("a@example.com", body=WS_BODY), k.sel1_key, "example.com", "sel1",
                    canon="relaxed/simple") + b"\r\n\r\n",
     "FAIL", "PASS", "PASS", None, ["dkim=pass header.d=example.com"]),
    ("dkim_empty_body_relaxed", SPF_FAIL_FROM,
     lambda k: sign(message("a@example.com", body=b""), k.sel1_key, "example.com", "sel1"),
     "FAIL", "PASS", "PASS", None, ["dkim=pass header.d=example.com"]),
    ("dkim_empty_body_simple", SPF_FAIL_FROM,
     lambda k: sign(message("a@example.com", body=b""), k.sel1_key, "example.com", "sel1",
                    canon="simple/simple") + b"\r\n",
     "FAIL", "PASS", "PASS", None, ["dkim=pass header.d=example.com"]),
    ("dkim_header_altered", SPF_FAIL_FROM,
     lambda k: sign(message("a@example.com"), k.sel1_key, "example.com", "sel1")
     .replace(b"Subject: auth test", b"Subject: auth best"),
     "FAIL", "FAIL", "FAIL", "REJECT", ["dkim=fail"]),
    ("dkim_no_key", SPF_FAIL_FROM,
     lambda k: sign(message("a@example.com"), k.sel1_key, "example.com", "nokey"),
     "FAIL", "FAIL", "FAIL", "REJECT", ["dkim=permerror", "header.s=nokey"]),
    ("dkim_revoked_key", SPF_FAIL_FROM,
     lambda k: sign(message("a@example.com"), k.sel1_key, "example.com", "revoked"),
     "FAIL", "FAIL", "FAIL", "REJECT", ["header.s=revoked"]),
    ("dkim_key_dns_servfail", SPF_FAIL_FROM,
     lambda k: sign(message("a@example.com"), k.sel1_key, "servfail.example.org", "sel1"),
     "FAIL", "PROCESSING_FAILED", "FAIL", "REJECT", ["dkim=temperror"]),
    ("dkim_invalid_domain_is_no_key", SPF_FAIL_FROM,
     lambda k: sign(message("a@example.com"), k.sel1_key, "bad..example.com", "sel1"),
     "FAIL", "FAIL", "FAIL", "REJECT", ["dkim=permerror"]),
    ("dkim_unparseable", SPF_FAIL_FROM,
     lambda k: message("a@example.com", extra=b"DKIM-Signature: this is not a signature\r\n"),
     "FAIL", "FAIL", "FAIL", "REJECT", ["dkim=permerror"]),
    ("dkim_pass_unaligned", SPF_FAIL_FROM,
     lambda k: sign(message("a@example.com"), k.net_key, "example.net", "sel2"),
     "FAIL", "PASS", "FAIL", "REJECT", ["dkim=pass header.d=example.net", "dmarc=fail"]),
    ("dkim_two_signatures_one_good", SPF_FAIL_FROM,
     lambda k: sign(sign(message("a@example.com"), k.net_key, "example.net", "sel2"),
                    k.sel1_key, "example.com", "nokey"),
     "FAIL", "PASS", "FAIL", "REJECT",
     ["dkim=permerror", "header.s=nokey", "dkim=pass header.d=example.net header.s=sel2"]),
    ("dmarc_quarantine", SPF_FAIL_FROM, lambda k: message("a@q.example.com"),
     "FAIL", "GRAY", "FAIL", "QUARANTINE", ["dmarc=fail (p=quarantine)", "header.from=q.example.com"]),
    ("dmarc_relaxed_spf_alignment", SPF_PASS_FROM, lambda k: message("a@relaxed.example.com"),
     "PASS", "GRAY", "PASS", None, ["dmarc=pass"]),
    ("dmarc_strict_spf_alignment", SPF_PASS_FROM, lambda k: message("a@strict.example.com"),
     "PASS", "GRAY", "FAIL", "REJECT", ["dmarc=fail"]),
    ("dmarc_strict_dkim_alignment", SPF_FAIL_FROM,
     lambda k: sign(message("a@sdkim.example.com"), k.sel1_key, "example.com", "sel1"),
     "FAIL", "PASS", "FAIL", "QUARANTINE", ["dkim=pass", "dmarc=fail"]),
    ("dmarc_relaxed_dkim_alignment", SPF_FAIL_FROM,
     lambda k: sign(message("a@q.example.com"), k.sel1_key, "example.com", "sel1"),
     "FAIL", "PASS", "PASS", None, ["dmarc=pass"]),
    ("dmarc_org_domain_record", SPF_FAIL_FROM, lambda k: message("a@sub.example.com"),
     "FAIL", "GRAY", "FAIL", "REJECT", ["header.from=sub.example.com"]),
    ("dmarc_sp_for_subdomain_couk", SPF_FAIL_FROM, lambda k: message("a@a.b.example.co.uk"),
     "FAIL", "GRAY", "FAIL", "QUARANTINE", ["header.from=a.b.example.co.uk"]),
    ("dmarc_p_for_org_domain_couk", SPF_FAIL_FROM, lambda k: message("a@example.co.uk"),
     "FAIL", "GRAY", "FAIL", "REJECT", ["(p=reject sp=quarantine)"]),
    ("dmarc_couk_aligned_spf", "x@example.co.uk", lambda k: message("a@a.b.example.co.uk"),
     "PASS", "GRAY", "PASS", None, ["dmarc=pass"]),
    ("dmarc_pct0_downgrades", SPF_FAIL_FROM, lambda k: message("a@pct0.example.com"),
     "FAIL", "GRAY", "FAIL", "QUARANTINE", ["policy.dmarc=quarantine"]),
    ("dmarc_pct100", SPF_FAIL_FROM, lambda k: message("a@pct100.example.com"),
     "FAIL", "GRAY", "FAIL", "QUARANTINE", []),
    # RFC 7489 §6.6.3: a record without a valid p= (and no rua=) means no DMARC processing.
    ("dmarc_invalid_record_is_none", SPF_FAIL_FROM, lambda k: message("a@bad.example.com"),
     "FAIL", "GRAY", "GRAY", "NONE", ["dmarc=none"]),
    ("dmarc_no_record", SPF_FAIL_FROM, lambda k: message("a@example.net"),
     "FAIL", "GRAY", "GRAY", "NONE", ["dmarc=none"]),
    ("dmarc_no_from", SPF_PASS_FROM, lambda k: message(None),
     "PASS", "GRAY", "PROCESSING_FAILED", None, ["dmarc=permerror"]),
    ("dmarc_malformed_from", SPF_PASS_FROM, lambda k: message("a@example.com>"),
     "PASS", "GRAY", "PROCESSING_FAILED", None, ["dmarc=permerror"]),
    ("dmarc_display_name_and_comment", SPF_PASS_FROM,
     lambda k: message('"Doe, J. <x@evil.example.net>" (c, d@example.net) <a@example.com>'),
     "PASS", "GRAY", "PASS", None, ["header.from=example.com"]),
    # Several authors never pass DMARC, even when every domain aligns (test_dmarc_conformance).
    ("dmarc_two_from_domains_never_pass", SPF_PASS_FROM,
     lambda k: message("a@example.com, b@q.example.com"),
     "PASS", "GRAY", "PROCESSING_FAILED", None, ["dmarc=permerror", "several author"]),
    ("dmarc_two_from_headers", SPF_PASS_FROM,
     lambda k: message("a@example.com", extra=b"From: b@example.co.uk\r\n"),
     "PASS", "GRAY", "FAIL", "REJECT", ["header.from=example.co.uk"]),
    ("dmarc_two_from_domains_one_fails", SPF_PASS_FROM,
     lambda k: message("a@example.com, b@example.co.uk"),
     "PASS", "GRAY", "FAIL", "REJECT", ["header.from=example.co.uk"]),
]


def session(sl, mail_from, data, helo="client.example.net", rcpt="u@example.test"):
    c = sl.raw()
    c.expect(220)
    c.expect(250, "EHLO %s\r\n" % helo)
    c.expect(250, "MAIL FROM:<%s>\r\n" % mail_from)
    c.expect(250, "RCPT TO:<%s>\r\n" % rcpt)
    c.expect(354, "DATA\r\n")
    c.send(data + b".\r\n")
    c.expect(250)
    c.send("QUIT\r\n")
    c.close()


def stored_one(test, sl, user):
    files = sl.maildir("example.test", user)
    test.assertEqual(len(files), 1, sl.read_log())
    return read_file(files[0])


class AuthThroughSmtp(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.keys = Keys()
        cls.dns = start_dns(cls.keys)
        cls.sluice = auth_sluice(cls.dns.port)

    @classmethod
    def tearDownClass(cls):
        cls.sluice.stop()
        cls.dns.stop()
        shutil.rmtree(cls.keys.dir, ignore_errors=True)

    def check_case(self, name, mail_from, make, spf, dkim, dmarc, policy, fragments):
        user = name.replace("_", "-")
        session(self.sluice, mail_from, make(self.keys), rcpt=user + "@example.test")
        fields = header_fields(stored_one(self, self.sluice, user))
        got = {n: v for n, v in fields if n.startswith("X-Sluice-")}
        self.assertEqual(got.get("X-Sluice-SPF-Verdict"), spf, fields)
        self.assertEqual(got.get("X-Sluice-DKIM-Verdict"), dkim, fields)
        self.assertEqual(got.get("X-Sluice-DMARC-Verdict"), dmarc, fields)
        self.assertEqual(got.get("X-Sluice-DMARC-Policy"), policy, fields)
        ar = [v for n, v in fields if n == "Authentication-Results"]
        self.assertEqual(len(ar), 1, fields)
        self.assertTrue(ar[0].startswith("mx.example.test;"), ar[0])
        for frag in fragments:
            self.assertIn(frag, ar[0])
        rspf = [v for n, v in fields if n == "Received-SPF"]
        self.assertEqual(len(rspf), 1, fields)
        self.assertTrue(rspf[0].startswith(spf_result_word(ar[0])), (rspf[0], ar[0]))
        self.assertIn("client-ip=127.0.0.1;", rspf[0])
        self.assertIn('envelope-from="%s";' % mail_from, rspf[0])
        self.assertIn("receiver=mx.example.test; identity=mailfrom;", rspf[0])
        # The message's log line carries the same verdicts (and the policy only when DMARC
        # did not pass).
        line = self.sluice.wait_log(r"message qid=\S+ .*to=%s@example\.test [^\n]*"
                                    % re.escape(user)).group(0)
        want = " spf=%s dkim=%s dmarc=%s" % (spf, dkim, dmarc)
        want += " dmarc_policy=%s" % policy if policy else ""
        # The verdicts end the line's fixed part: the session id comes next (issue 23).
        self.assertIn(want + " session=S", line)

    def test_null_sender_uses_helo(self):
        session(self.sluice, "", message("a@example.com"), helo="helo.example.com",
                rcpt="nullsender@example.test")
        fields = header_fields(stored_one(self, self.sluice, "nullsender"))
        d = dict(fields)
        self.assertEqual(d["X-Sluice-SPF-Verdict"], "PASS")
        self.assertIn("smtp.helo=helo.example.com", d["Authentication-Results"])
        self.assertIn("identity=helo;", d["Received-SPF"])

    def test_forged_headers_removed(self):
        extra = (b"Authentication-Results: mx.example.test; spf=pass smtp.mailfrom=x@example.com\r\n"
                 b"Authentication-Results: MX.EXAMPLE.TEST (forged); dkim=pass\r\n"
                 b"Authentication-Results: other.example.net; dkim=pass header.d=example.net\r\n"
                 b"X-Sluice-SPF-Verdict: PASS\r\nX-Sluice-DKIM-Verdict: PASS\r\n"
                 b"X-Sluice-DMARC-Verdict: PASS\r\nX-Sluice-DMARC-Policy:\r\n NONE\r\n")
        session(self.sluice, SPF_FAIL_FROM, message("a@spf-fail.example.com", extra=extra),
                rcpt="forged@example.test")
        data = stored_one(self, self.sluice, "forged")
        fields = header_fields(data)
        ar = [v for n, v in fields if n == "Authentication-Results"]
        self.assertEqual(len(ar), 2, fields)
        self.assertTrue(ar[0].startswith("mx.example.test;") and "spf=fail" in ar[0], ar)
        self.assertTrue(ar[1].startswith("other.example.net;"), ar)
        for n in ("X-Sluice-SPF-Verdict", "X-Sluice-DKIM-Verdict", "X-Sluice-DMARC-Verdict",
                  "X-Sluice-DMARC-Policy"):
            self.assertEqual(len([1 for f, _ in fields if f == n]), 1, (n, fields))
        self.assertEqual(dict(fields)["X-Sluice-SPF-Verdict"], "FAIL")
        self.assertEqual(dict(fields)["X-Sluice-DMARC-Policy"], "REJECT")
        self.assertIn(b"\r\nSubject: auth test\r\n", data)


def spf_result_word(ar):
    return ar.split("spf=", 1)[1].split()[0]


def _make(case):
    name = case[0]

    def test(self):
        self.check_case(*case)
    test.__name__ = "test_" + name
    return test


for _case in CASES:
    setattr(AuthThroughSmtp, "test_" + _case[0], _make(_case))


class DnsOutage(unittest.TestCase):
    """A resolver that never answers: every check degrades to PROCESSING_FAILED within the
    configured timeout, and other sessions are served meanwhile."""

    def setUp(self):
        self.hole = Blackhole()
        self.keys = Keys()
        self.sluice = Sluice(server_extra="auth_checks = true, workers = 2,", rules="""
dns { servers = { "127.0.0.1:%d" }, timeout_ms = 400 }
rule_set "main" {
  rule { name = "store", recipients = { "example.test" },
         actions = { store { maildir = "var/mail/{domain}/{user}" } } },
}
""" % self.hole.port).start()

    def tearDown(self):
        self.sluice.stop()
        self.hole.close()
        shutil.rmtree(self.keys.dir, ignore_errors=True)

    def test_timeout_gives_processing_failed(self):
        c = self.sluice.raw()
        c.expect(220)
        c.expect(250, "EHLO client.example.net\r\n")
        c.expect(250, "MAIL FROM:<a@example.com>\r\n")
        c.expect(250, "RCPT TO:<outage@example.test>\r\n")
        c.expect(354, "DATA\r\n")
        c.send(sign(message("a@example.com"), self.keys.sel1_key, "example.com", "sel1") +
               b".\r\n")
        # While the first message waits on DNS, another client is served.
        other = self.sluice.raw()
        other.expect(220)
        other.expect(250, "EHLO other.example.net\r\n")
        other.expect(221, "QUIT\r\n")
        c.expect(250)
        c.send("QUIT\r\n")
        d = dict(header_fields(stored_one(self, self.sluice, "outage")))
        self.assertEqual(d["X-Sluice-SPF-Verdict"], "PROCESSING_FAILED")
        self.assertEqual(d["X-Sluice-DKIM-Verdict"], "PROCESSING_FAILED")
        self.assertEqual(d["X-Sluice-DMARC-Verdict"], "PROCESSING_FAILED")
        self.assertNotIn("X-Sluice-DMARC-Policy", d)
        self.assertIn("spf=temperror", d["Authentication-Results"])
        self.assertIn("dkim=temperror", d["Authentication-Results"])


class DnsOutageMidway(unittest.TestCase):
    """The DNS server goes away between two messages of one session and comes back: the
    message during the outage gets PROCESSING_FAILED within the timeout, the one after the
    recovery is judged normally again."""

    def test_outage_and_recovery(self):
        keys = Keys()
        dns = start_dns(keys)
        sl = Sluice(server_extra="auth_checks = true, workers = 1,", rules="""
dns { servers = { "127.0.0.1:%d" }, timeout_ms = 500 }
rule_set "main" {
  rule { name = "store", recipients = { "example.test" },
         actions = { store { maildir = "var/mail/{domain}/{user}" } } },
}
""" % dns.port).start()
        try:
            c = sl.raw()
            c.expect(220)
            c.expect(250, "EHLO client.example.net\r\n")

            def send(user, mail_from, frm):
                c.expect(250, "MAIL FROM:<%s>\r\n" % mail_from)
                c.expect(250, "RCPT TO:<%s@example.test>\r\n" % user)
                c.expect(354, "DATA\r\n")
                c.send(message(frm) + b".\r\n")
                c.expect(250)
                return dict(header_fields(stored_one(self, sl, user)))

            d = send("before", SPF_PASS_FROM, "a@example.com")
            self.assertEqual(d["X-Sluice-SPF-Verdict"], "PASS")
            dns.pause()
            d = send("during", "x@q.example.com", "a@q.example.com")
            self.assertEqual(d["X-Sluice-SPF-Verdict"], "PROCESSING_FAILED")
            self.assertEqual(d["X-Sluice-DMARC-Verdict"], "PROCESSING_FAILED")
            dns.start()
            # Names not looked up before, so nothing comes from the cache.
            d = send("after", "x@spf-soft.example.com", "a@spf-soft.example.com")
            self.assertEqual(d["X-Sluice-SPF-Verdict"], "FAIL")
            self.assertEqual(d["X-Sluice-DMARC-Verdict"], "FAIL")
            self.assertEqual(d["X-Sluice-DMARC-Policy"], "REJECT")
            c.expect(221, "QUIT\r\n")
        finally:
            sl.stop()
            dns.stop()
            shutil.rmtree(keys.dir, ignore_errors=True)


class DkimKeyCache(unittest.TestCase):
    """libopendkim's key decodes go through sluice's cache (auth/dkim_key_cache.c): a key is
    decoded once, later signatures by it are verified with the kept key, a bad signature still
    fails with it, and another key is decoded on its own."""

    def test_key_decoded_once_and_verdicts_unchanged(self):
        keys = Keys()
        dns = start_dns(keys)
        mport = free_port()
        sl = auth_sluice(dns.port, 'metrics = "127.0.0.1:%d",' % mport)
        try:
            sends = [
                ("one", sign(message("a@example.com"), keys.sel1_key, "example.com", "sel1"),
                 "PASS"),
                ("two", sign(message("a@example.com", body=b"Another.\r\n"), keys.sel1_key,
                             "example.com", "sel1"), "PASS"),
                ("bad", sign(message("a@example.com"), keys.sel1_key, "example.com", "sel1")
                 .replace(b"Subject: auth test", b"Subject: auth best"), "FAIL"),
                ("net", sign(message("a@example.net"), keys.net_key, "example.net", "sel2"),
                 "PASS"),
            ]
            for user, data, want in sends:
                session(sl, SPF_FAIL_FROM, data, rcpt=user + "@example.test")
                fields = dict(header_fields(stored_one(self, sl, user)))
                self.assertEqual(fields.get("X-Sluice-DKIM-Verdict"), want, (user, fields))
            with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % mport) as r:
                text = r.read().decode()
            counts = {}
            for line in text.splitlines():
                if line.startswith("sluice_dkim_key_decodes_total{"):
                    counts[line.split('"')[1]] = int(line.split()[-1])
            self.assertEqual(counts.get("decoded"), 2, text)
            self.assertEqual(counts.get("cache"), 2, text)
        finally:
            sl.stop()
            dns.stop()
            shutil.rmtree(keys.dir, ignore_errors=True)


class AuthOff(unittest.TestCase):
    def test_auth_checks_false_adds_nothing(self):
        sl = Sluice(server_extra="auth_checks = false,").start()
        try:
            session(sl, "a@example.com", message("a@example.com"), rcpt="u@example.test")
            files = sl.maildir("example.test", "u")
            self.assertEqual(len(files), 1)
            names = [n for n, _ in header_fields(read_file(files[0]))]
            self.assertNotIn("Authentication-Results", names)
            self.assertNotIn("X-Sluice-SPF-Verdict", names)
            line = sl.wait_log(r"message qid=\S+ .*to=u@example\.test [^\n]*").group(0)
            self.assertNotRegex(line, r" (spf|dkim|dmarc|dmarc_policy)=", line)
        finally:
            sl.stop()


if __name__ == "__main__":
    unittest.main()
