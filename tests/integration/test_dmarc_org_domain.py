"""DMARC relaxed alignment through the organizational domain (RFC 7489 §3.2), through real SMTP
sessions (client 127.0.0.1) into stored messages, every record served by nsd.

The organizational domain comes from the public suffix list with its default rule "*": under
a top-level domain the list does not name (.example here, like every new gTLD missing from a
list snapshot and every private TLD) it is the name one label below the TLD. Each of the three
identities DMARC aligns is covered there: an SPF-passing MAIL FROM subdomain, a DKIM d=
subdomain, and for a null sender the HELO name that passes SPF. Then the list's wildcard and
exception rules (*.ck, !www.ck), an A-label TLD (xn--fiqs8s), a HELO name with a trailing dot,
and the same unlisted-TLD rows under the RFC 9989 tree walk.

A row: (name, From domain, MAIL FROM ("" for <>), HELO, DKIM d= or None, verdict, policy,
Authentication-Results fragments)."""
import shutil
import tempfile
import unittest

from auth_fixtures import header_fields, message
from dkim_craft import RsaKey, craft
from dns_harness import DnsServer, txt
from sluice_harness import Sluice
from test_auth import session, stored_one

SPF = "v=spf1 ip4:127.0.0.1 -all"
REJECT = "v=DMARC1; p=reject"
HELO = "client.example.net"  # no SPF record: never an identity that passes

CASES = [
    # an unlisted TLD: the default rule "*" makes d1.example the organizational domain
    ("unlisted_tld_spf_subdomain_aligns", "d1.example", "bounce@mail.d1.example", HELO, None,
     "PASS", None, ["spf=pass", "smtp.mailfrom=bounce@mail.d1.example", "dmarc=pass",
                    "header.from=d1.example"]),
    ("unlisted_tld_dkim_subdomain_aligns", "d1.example", "bounce@other.d2.example", HELO,
     "mail.d1.example", "PASS", None, ["dkim=pass", "header.d=mail.d1.example", "dmarc=pass"]),
    ("unlisted_tld_null_sender_helo_aligns", "d1.example", "", "mx.d1.example", None,
     "PASS", None, ["spf=pass", "smtp.helo=mx.d1.example", "dmarc=pass"]),
    ("unlisted_tld_author_subdomain_aligns", "news.d1.example", "bounce@mail.d1.example", HELO,
     None, "PASS", None, ["dmarc=pass", "header.from=news.d1.example"]),
    # ... and d2.example is another organization under the same TLD
    ("unlisted_tld_other_domain_fails", "d1.example", "bounce@mail.d2.example", HELO, None,
     "FAIL", "REJECT", ["spf=pass", "dmarc=fail"]),
    ("unlisted_tld_other_dkim_domain_fails", "d1.example", "bounce@other.d2.example", HELO,
     "mail.d2.example", "FAIL", "REJECT", ["dkim=pass", "dmarc=fail"]),
    ("unlisted_tld_null_sender_other_helo_fails", "d1.example", "", "mx.d2.example", None,
     "FAIL", "REJECT", ["spf=pass", "smtp.helo=mx.d2.example", "dmarc=fail"]),
    # the HELO identity counts only for a null sender (RFC 7489 §3.1.2 uses MAIL FROM)
    ("helo_ignored_with_a_mail_from", "d1.example", "bounce@other.d2.example",
     "mx.d1.example", None, "FAIL", "REJECT", ["spf=pass", "smtp.mailfrom=bounce@other.d2.example",
                                               "dmarc=fail"]),
    # a trailing dot on the HELO name is the same name
    ("null_sender_helo_trailing_dot_aligns", "d1.example", "", "mx.d1.example.", None,
     "PASS", None, ["spf=pass", "dmarc=pass"]),
    # the wildcard rule *.ck: x.b.ck is an organization, y.b.ck another
    ("wildcard_rule_aligns_below", "x.b.ck", "bounce@mail.x.b.ck", HELO, None, "PASS", None,
     ["dmarc=pass", "header.from=x.b.ck"]),
    ("wildcard_rule_separates_siblings", "x.b.ck", "bounce@y.b.ck", HELO, None, "FAIL",
     "REJECT", ["spf=pass", "dmarc=fail"]),
    ("wildcard_rule_dkim_sibling_fails", "x.b.ck", "bounce@y.b.ck", HELO, "mail.y.b.ck",
     "FAIL", "REJECT", ["dkim=pass", "dmarc=fail"]),
    # the exception rule !www.ck: www.ck is an organization itself
    ("exception_rule_aligns", "www.ck", "bounce@mail.www.ck", HELO, "mail.www.ck", "PASS",
     None, ["dmarc=pass", "header.from=www.ck"]),
    # an IDN TLD in A-label form (中国)
    ("idn_tld_spf_subdomain_aligns", "example.xn--fiqs8s", "bounce@mail.example.xn--fiqs8s",
     HELO, None, "PASS", None, ["dmarc=pass", "header.from=example.xn--fiqs8s"]),
    ("idn_tld_dkim_subdomain_aligns", "example.xn--fiqs8s", "bounce@other.d2.example", HELO,
     "mail.example.xn--fiqs8s", "PASS", None, ["dkim=pass", "dmarc=pass"]),
    # a listed two-label suffix still counts as one
    ("listed_suffix_aligns", "d1.co.uk", "bounce@mail.d1.co.uk", HELO, None, "PASS", None,
     ["dmarc=pass"]),
]

# The unlisted-TLD rows again under dmarc { tree_walk = true }: the walk finds
# _dmarc.d1.example, so the organizational domains come out the same without the list.
TREE_CASES = [c for c in CASES if c[0].startswith(("unlisted_tld_", "helo_ignored",
                                                    "null_sender_helo"))]

ORG_DOMAINS = ["d1.example", "d2.example", "x.b.ck", "y.b.ck", "www.ck",
               "example.xn--fiqs8s", "d1.co.uk"]


def zones(key):
    zs = {}
    for d in ORG_DOMAINS:
        recs = [("@", "TXT", txt(SPF)), ("mail", "TXT", txt(SPF)), ("mx", "TXT", txt(SPF)),
                ("other", "TXT", txt(SPF)), ("_dmarc", "TXT", txt(REJECT)),
                ("sel._domainkey.mail", "TXT", txt(key.record()))]
        zs[d] = recs
    # the parents the tree walk reaches (their _dmarc names are NXDOMAIN, not REFUSED)
    for parent in ["example", "b.ck", "ck", "xn--fiqs8s", "co.uk"]:
        zs[parent] = []
    return zs


class Base(unittest.TestCase):
    DMARC_BLOCK = ""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="sluice-orgdom-")
        cls.key = RsaKey(cls.dir)
        cls.dns = DnsServer(zones(cls.key)).start()
        cls.sluice = Sluice(server_extra="auth_checks = true,", rules=cls.DMARC_BLOCK + """
dns { servers = { "127.0.0.1:%d" }, timeout_ms = 3000 }
rule_set "main" {
  rule { name = "store", recipients = { "example.test" },
         actions = { store { maildir = "var/mail/{domain}/{user}" } } },
}
""" % cls.dns.port).start()

    @classmethod
    def tearDownClass(cls):
        cls.sluice.stop()
        cls.dns.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def check_case(self, case):
        name, frm, mail_from, helo, dkim, verdict, policy, fragments = case
        user = name.replace("_", "-")
        data = message("author@" + frm)
        if dkim:
            data = craft(data, self.key, dkim, "sel")
        session(self.sluice, mail_from, data, helo=helo, rcpt=user + "@example.test")
        fields = header_fields(stored_one(self, self.sluice, user))
        got = dict(fields)
        self.assertEqual(got.get("X-Sluice-DMARC-Verdict"), verdict, fields)
        self.assertEqual(got.get("X-Sluice-DMARC-Policy"), policy, fields)
        ar = [v for n, v in fields if n == "Authentication-Results"]
        self.assertEqual(len(ar), 1, fields)
        for frag in fragments:
            self.assertIn(frag, ar[0])


class OrgDomainPsl(Base):
    pass


class OrgDomainTreeWalk(Base):
    DMARC_BLOCK = "dmarc { tree_walk = true }\n"


def _make(case):
    def test(self):
        self.check_case(case)
    test.__name__ = "test_" + case[0]
    return test


for _case in CASES:
    setattr(OrgDomainPsl, "test_" + _case[0], _make(_case))
for _case in TREE_CASES:
    setattr(OrgDomainTreeWalk, "test_" + _case[0], _make(_case))


if __name__ == "__main__":
    unittest.main()
