"""DMARC (RFC 7489) where libopendmarc 1.4.2 is wrong or silent, one table row per case, through
real SMTP sessions (client 127.0.0.1) into stored messages, every record served by nsd.

A row: (name, From header value(s), MAIL FROM, DKIM signing domain or None, records, expected
X-Sluice-DMARC-Verdict, expected X-Sluice-DMARC-Policy or None, Authentication-Results
fragments). "{D}" stands for the row's own registrable domain (row name with dashes, under .com;
under .co.uk for rows ending in _couk), whose zone holds the row's records as (owner relative
to {D}, TXT text). DKIM is one of None, "dom", ("dom", "rsa-sha1") or ("dom", "testing") (a
t=y key)."""
import shutil
import tempfile
import unittest

from auth_fixtures import check_block, header_fields, message
from dkim_craft import RsaKey, craft
from dns_harness import DnsServer, txt
from sluice_harness import Sluice
from test_auth import session, stored_one

SPF = "v=spf1 ip4:127.0.0.1 -all"

CASES = [
    # alignment: strict is exact, relaxed is the same organizational domain (§3.1)
    ("strict_spf_alignment_fails", "a@{D}", "b@mail.{D}", None,
     [("mail", SPF), ("_dmarc", "v=DMARC1; p=reject; aspf=s")], "FAIL", "REJECT",
     ["spf=pass", "dmarc=fail"]),
    ("relaxed_spf_alignment_passes", "a@{D}", "b@mail.{D}", None,
     [("mail", SPF), ("_dmarc", "v=DMARC1; p=reject; aspf=r")], "PASS", None, ["dmarc=pass"]),
    ("strict_dkim_alignment_fails", "a@{D}", "b@mail.{D}", "mail.{D}",
     [("_dmarc", "v=DMARC1; p=quarantine; adkim=s")], "FAIL", "QUARANTINE",
     ["dkim=pass", "dmarc=fail"]),
    ("relaxed_dkim_alignment_passes", "a@{D}", "b@mail.{D}", "mail.{D}",
     [("_dmarc", "v=DMARC1; p=quarantine")], "PASS", None, ["dmarc=pass"]),
    ("strict_dkim_exact_domain_passes", "a@{D}", "b@mail.{D}", "{D}",
     [("_dmarc", "v=DMARC1; p=reject; adkim=s; aspf=s")], "PASS", None, ["dmarc=pass"]),
    ("unaligned_everything_fails", "a@{D}", "b@mail.{D}", None,
     [("_dmarc", "v=DMARC1; p=reject")], "FAIL", "REJECT", ["dmarc=fail"]),
    # v=DMARC1 exactly, and first (§6.4)
    ("v_lower_case_is_no_record", "a@{D}", "b@mail.{D}", None,
     [("_dmarc", "v=dmarc1; p=reject")], "GRAY", "NONE", ["dmarc=none"]),
    ("v_not_first_is_no_record", "a@{D}", "b@mail.{D}", None,
     [("_dmarc", "p=reject; v=DMARC1")], "GRAY", "NONE", ["dmarc=none"]),
    ("v_with_spaces_is_a_record", "a@{D}", "b@mail.{D}", None,
     [("_dmarc", "v = DMARC1 ; p = reject")], "FAIL", "REJECT", ["dmarc=fail"]),
    ("two_records_is_no_record", "a@{D}", "b@mail.{D}", None,
     [("_dmarc", "v=DMARC1; p=reject"), ("_dmarc", "v=DMARC1; p=none")], "GRAY", "NONE",
     ["dmarc=none"]),
    # unknown tags are ignored (§6.3); bad or missing p= (§6.6.3)
    ("unknown_tags_ignored", "a@{D}", "b@mail.{D}", None,
     [("_dmarc", "v=DMARC1; p=reject; foo=bar; np=quarantine; t=y")], "FAIL", "REJECT",
     ["dmarc=fail"]),
    ("bad_p_without_rua_is_no_record", "a@{D}", "b@mail.{D}", None,
     [("_dmarc", "v=DMARC1; p=bogus")], "GRAY", "NONE", ["dmarc=none"]),
    ("bad_p_with_rua_is_p_none", "a@{D}", "b@mail.{D}", None,
     [("_dmarc", "v=DMARC1; p=bogus; rua=mailto:r@{D}")], "GRAY", "NONE", ["dmarc=fail"]),
    ("missing_p_with_rua_is_p_none", "a@{D}", "b@mail.{D}", None,
     [("_dmarc", "v=DMARC1; rua=mailto:r@{D}")], "GRAY", "NONE", ["dmarc=fail"]),
    ("missing_p_without_rua_is_no_record", "a@{D}", "b@mail.{D}", None,
     [("_dmarc", "v=DMARC1; adkim=s")], "GRAY", "NONE", ["dmarc=none"]),
    ("bad_p_with_bad_rua_is_no_record", "a@{D}", "b@mail.{D}", None,
     [("_dmarc", "v=DMARC1; p=bogus; rua=nobody")], "GRAY", "NONE", ["dmarc=none"]),
    ("upper_case_policy_value", "a@{D}", "b@mail.{D}", None,
     [("_dmarc", "v=DMARC1; p=REJECT")], "FAIL", "REJECT", ["dmarc=fail"]),
    ("pct_0_downgrades_reject", "a@{D}", "b@mail.{D}", None,
     [("_dmarc", "v=DMARC1; p=reject; pct=0")], "FAIL", "QUARANTINE", ["dmarc=fail"]),
    # sp= for subdomains (§6.3, §6.6.3)
    ("sp_applies_to_subdomain", "a@sub.{D}", "b@mail.{D}", None,
     [("_dmarc", "v=DMARC1; p=reject; sp=quarantine")], "FAIL", "QUARANTINE",
     ["header.from=sub.{D}"]),
    ("p_applies_to_organizational_domain", "a@{D}", "b@mail.{D}", None,
     [("_dmarc", "v=DMARC1; p=reject; sp=quarantine")], "FAIL", "REJECT",
     ["header.from={D}"]),
    ("sp_none_for_subdomain", "a@sub.{D}", "b@mail.{D}", None,
     [("_dmarc", "v=DMARC1; p=reject; sp=none")], "GRAY", "NONE", ["dmarc=fail"]),
    ("subdomain_record_uses_its_own_p", "a@sub.{D}", "b@mail.{D}", None,
     [("_dmarc", "v=DMARC1; p=reject; sp=none"), ("_dmarc.sub", "v=DMARC1; p=quarantine")],
     "FAIL", "QUARANTINE", ["dmarc=fail"]),
    ("invalid_sp_is_ignored", "a@sub.{D}", "b@mail.{D}", None,
     [("_dmarc", "v=DMARC1; p=reject; sp=bogus")], "FAIL", "REJECT", ["dmarc=fail"]),
    ("org_domain_under_two_label_suffix_couk", "a@x.y.{D}", "b@{D}", None,
     [("@", SPF), ("_dmarc", "v=DMARC1; p=reject; sp=quarantine")], "PASS", None,
     ["dmarc=pass", "header.from=x.y.{D}"]),
    ("subdomain_fails_with_sp_couk", "a@x.y.{D}", "b@mail.{D}", None,
     [("_dmarc", "v=DMARC1; p=reject; sp=quarantine")], "FAIL", "QUARANTINE",
     ["header.from=x.y.{D}"]),
    # the From header: malformed or several authors never pass (§6.6.1)
    ("malformed_from_never_passes", "a@{D}>", "b@{D}", None,
     [("@", SPF), ("_dmarc", "v=DMARC1; p=reject")], "PROCESSING_FAILED", None,
     ["dmarc=permerror"]),
    ("from_without_domain_never_passes", "a", "b@{D}", None,
     [("@", SPF), ("_dmarc", "v=DMARC1; p=reject")], "PROCESSING_FAILED", None,
     ["dmarc=permerror"]),
    ("from_with_two_angle_addrs_never_passes", "<a@{D}> <b@{D}>", "b@{D}", None,
     [("@", SPF), ("_dmarc", "v=DMARC1; p=reject")], "PROCESSING_FAILED", None,
     ["dmarc=permerror"]),
    ("two_mailboxes_same_domain_never_pass", "a@{D}, b@{D}", "b@{D}", None,
     [("@", SPF), ("_dmarc", "v=DMARC1; p=reject")], "PROCESSING_FAILED", None,
     ["dmarc=permerror"]),
    ("two_from_fields_never_pass", ["a@{D}", "b@{D}"], "b@{D}", None,
     [("@", SPF), ("_dmarc", "v=DMARC1; p=reject")], "PROCESSING_FAILED", None,
     ["dmarc=permerror"]),
    ("two_mailboxes_one_failing_domain_fails", "a@{D}, b@sub.{D}", "b@{D}", None,
     [("@", SPF), ("_dmarc", "v=DMARC1; p=none"),
      ("_dmarc.sub", "v=DMARC1; p=reject; aspf=s")], "FAIL", "REJECT",
     ["header.from=sub.{D}"]),
    # only a DKIM pass that counts aligns
    ("dkim_rsa_sha1_does_not_pass", "a@{D}", "b@mail.{D}", ("{D}", "rsa-sha1"),
     [("_dmarc", "v=DMARC1; p=reject")], "FAIL", "REJECT", ["dkim=fail", "dmarc=fail"]),
    ("dkim_testing_key_does_not_pass", "a@{D}", "b@mail.{D}", ("{D}", "testing"),
     [("_dmarc", "v=DMARC1; p=reject")], "FAIL", "REJECT", ["dkim=neutral", "dmarc=fail"]),
]


# The same rows under dmarc { tree_walk = true } (RFC 9989: DNS tree walk, psd=, t=, no pct=).
TREE_CASES = [
    ("tw_parent_record_uses_sp", "a@x.y.{D}", "b@mail.{D}", None,
     [("_dmarc", "v=DMARC1; p=reject; sp=quarantine")], "FAIL", "QUARANTINE",
     ["header.from=x.y.{D}"]),
    ("tw_own_record_uses_p", "a@{D}", "b@mail.{D}", None,
     [("_dmarc", "v=DMARC1; p=reject; sp=quarantine")], "FAIL", "REJECT", ["dmarc=fail"]),
    # {D} declares itself a public suffix domain: a.{D} and b.{D} are separate organizations
    # (the public suffix list would make both {D})
    ("tw_psd_y_separates_organizations", "x@a.{D}", "y@b.{D}", None,
     [("b", SPF), ("_dmarc", "v=DMARC1; p=none; psd=y"), ("_dmarc.a", "v=DMARC1; p=reject")],
     "FAIL", "REJECT", ["spf=pass", "dmarc=fail"]),
    ("tw_same_organization_aligns", "x@a.{D}", "y@mail.a.{D}", None,
     [("mail.a", SPF), ("_dmarc", "v=DMARC1; p=none; psd=y"),
      ("_dmarc.a", "v=DMARC1; p=reject")], "PASS", None, ["dmarc=pass"]),
    # psd=n: the organizational domain is dept.{D}, so other.{D} is not aligned
    ("tw_psd_n_names_organization", "x@mail.dept.{D}", "y@other.{D}", None,
     [("other", SPF), ("_dmarc.dept", "v=DMARC1; p=reject; psd=n")], "FAIL", "REJECT",
     ["dmarc=fail"]),
    ("tw_t_y_applies_one_step_lower", "a@{D}", "b@mail.{D}", None,
     [("_dmarc", "v=DMARC1; p=reject; t=y")], "FAIL", "QUARANTINE", ["dmarc=fail"]),
    ("tw_pct_is_ignored", "a@{D}", "b@mail.{D}", None,
     [("_dmarc", "v=DMARC1; p=reject; pct=0")], "FAIL", "REJECT", ["dmarc=fail"]),
    ("tw_long_name_jumps_to_seven_labels", "a@l1.l2.l3.l4.l5.l6.l7.l8.{D}", "b@mail.{D}", None,
     [("_dmarc", "v=DMARC1; p=reject; sp=quarantine")], "FAIL", "QUARANTINE",
     ["dmarc=fail"]),
    # np= for author subdomains that do not exist (ghost.{D} has no records; real.{D} has one)
    ("tw_np_for_nonexistent_subdomain", "a@ghost.{D}", "b@mail.{D}", None,
     [("_dmarc", "v=DMARC1; p=none; sp=quarantine; np=reject")], "FAIL", "REJECT",
     ["dmarc=fail"]),
    ("tw_sp_for_existing_subdomain", "a@real.{D}", "b@mail.{D}", None,
     [("real", "v=spf1 -all"), ("_dmarc", "v=DMARC1; p=none; sp=quarantine; np=reject")],
     "FAIL", "QUARANTINE", ["dmarc=fail"]),
    ("tw_no_record_is_none", "a@x.{D}", "b@mail.{D}", None, [], "GRAY", "NONE",
     ["dmarc=none"]),
]


def domain_of(name):
    return name.replace("_", "-") + (".co.uk" if name.endswith("_couk") else ".com")


def fill(v, d):
    return v.replace("{D}", d)


def build_message(case, key):
    name, frm, mail_from, dkim, _, _, _, _ = case
    d = domain_of(name)
    froms = frm if isinstance(frm, list) else [frm]
    extra = b"".join(b"From: " + fill(f, d).encode() + b"\r\n" for f in froms[1:])
    data = message(fill(froms[0], d), extra=extra)
    if dkim:
        dom, mode = (dkim, None) if isinstance(dkim, str) else dkim
        dom = fill(dom, d)
        if mode == "rsa-sha1":
            data = craft(data, key, dom, "sel", alg="rsa-sha1")
        else:
            data = craft(data, key, dom, "tsel" if mode == "testing" else "sel")
    return fill(mail_from, d), data


def zones(key):
    zs = {}
    for case in CASES + TREE_CASES:
        name, records, dkim = case[0], case[4], case[3]
        d = domain_of(name)
        recs = [(owner, "TXT", txt(fill(text, d))) for owner, text in records]
        if dkim:
            dom = fill(dkim if isinstance(dkim, str) else dkim[0], d)
            recs.append(("sel._domainkey.%s." % dom, "TXT", txt(key.record())))
            recs.append(("tsel._domainkey.%s." % dom, "TXT", txt(key.record("k=rsa; t=y; "))))
        zs[d] = recs
    zs["com"] = []
    zs["co.uk"] = []
    return zs


class DmarcBase(unittest.TestCase):
    """One nsd with every row's zone (and the empty zones of their suffixes, which the tree
    walk reaches) and one sluice with DMARC_BLOCK; the rows are added below."""
    DMARC_BLOCK = ""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="sluice-dmarcconf-")
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
        name, verdict, policy, fragments = case[0], case[5], case[6], case[7]
        user = name.replace("_", "-")
        mail_from, data = build_message(case, self.key)
        session(self.sluice, mail_from, data, rcpt=user + "@example.test")
        fields = header_fields(stored_one(self, self.sluice, user))
        got = dict(fields)
        self.assertEqual(got.get("X-Sluice-DMARC-Verdict"), verdict, fields)
        self.assertEqual(got.get("X-Sluice-DMARC-Policy"), policy, fields)
        ar = [v for n, v in fields if n == "Authentication-Results"]
        self.assertEqual(len(ar), 1, fields)
        for frag in fragments:
            self.assertIn(fill(frag, domain_of(name)), ar[0])


class DmarcConformance(DmarcBase):
    pass


class DmarcTreeWalk(DmarcBase):
    DMARC_BLOCK = "dmarc { tree_walk = true }\n"


class DmarcConfig(unittest.TestCase):
    def check(self, text):
        return check_block(text)

    def test_valid(self):
        r = self.check("dmarc { tree_walk = true }")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("dmarc (line 2): DNS tree walk (RFC 9989)", r.stdout)
        r = self.check("dmarc { tree_walk = false }")
        self.assertIn("dmarc (line 2): public suffix list (RFC 7489)", r.stdout)

    def test_errors_name_the_line(self):
        for text, msg in [("dmarc { tree_walk = 1 }", ":2: dmarc: field 'tree_walk' must be true or"),
                          ("dmarc { treewalk = true }", ":2: dmarc: unknown key 'treewalk'"),
                          ("dmarc {}\ndmarc {}", ":3: dmarc { } is given twice"),
                          ('dmarc "x"', ":2: dmarc expects a table")]:
            with self.subTest(text=text):
                r = self.check(text)
                self.assertEqual(r.returncode, 1, r.stdout)
                self.assertIn(msg, r.stderr)


def _make(case):
    def test(self):
        self.check_case(case)
    test.__name__ = "test_" + case[0]
    return test


for _case in CASES:
    setattr(DmarcConformance, "test_" + _case[0], _make(_case))
for _case in TREE_CASES:
    setattr(DmarcTreeWalk, "test_" + _case[0], _make(_case))


if __name__ == "__main__":
    unittest.main()
