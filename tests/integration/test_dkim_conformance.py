"""DKIM where the RFCs and libopendkim 2.11 disagree, and the public vectors in tests/data/dkim,
through real SMTP sessions into stored messages, keys served by nsd.

Each row of CASES: (name, message maker, expected X-Sluice-DKIM-Verdict, fragments expected in
Authentication-Results). VECTORS: the signed messages of tests/data/dkim (SOURCES.md there),
sent as they are (CRLF on the wire), with the expected verdict and result fragments."""
import json
import os
import shutil
import tempfile
import time
import unittest

from auth_fixtures import auth_sluice, header_fields, message
from dkim_craft import Ed25519Key, RsaKey, craft
from dns_harness import DnsServer, txt_strings, txt
from test_auth import session, stored_one

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "dkim")


class Keys:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="sluice-dkimconf-")
        self.rsa = RsaKey(self.dir)
        self.rsa512 = RsaKey(self.dir, "short", bits=512)
        self.ed = Ed25519Key(self.dir)


def zones(k):
    com = [
        ("@", "TXT", txt("v=spf1 ?all")),
        ("r1._domainkey", "TXT", txt(k.rsa.record())),
        ("r512._domainkey", "TXT", txt(k.rsa512.record())),
        ("ed._domainkey", "TXT", txt(k.ed.record())),
        # key records whose k= contradicts the key they carry and the signatures made with it
        ("ked._domainkey", "TXT", txt(k.rsa.record("k=ed25519; "))),
        ("krsa._domainkey", "TXT", txt(k.ed.record("k=rsa; "))),
        ("testing._domainkey", "TXT", txt(k.rsa.record("k=rsa; t=y; "))),
    ]
    zs = {"example.com": com, "football.example.com": [], "test.ex": []}
    for fname in ("rfc8463/dns.json", "keys.json"):
        with open(os.path.join(DATA, fname)) as f:
            for owner, types in json.load(f).items():
                zone = max((z for z in zs if owner == z or owner.endswith("." + z)), key=len)
                for rtype, values in types.items():
                    for v in values:
                        zs[zone].append((owner + ".", rtype, txt_strings(v)))
    return zs


def msg(frm="a@example.com"):
    return message(frm)


# (name, maker(keys), DKIM verdict, Authentication-Results fragments)
CASES = [
    ("rsa_sha256_passes", lambda k: craft(msg(), k.rsa, "example.com", "r1"),
     "PASS", ["dkim=pass header.d=example.com header.s=r1"]),
    ("ed25519_passes", lambda k: craft(msg(), k.ed, "example.com", "ed"),
     "PASS", ["dkim=pass header.d=example.com header.s=ed"]),
    # RFC 8301 §3.1: rsa-sha1 MUST NOT be considered valid (libopendkim passes it).
    ("rsa_sha1_fails", lambda k: craft(msg(), k.rsa, "example.com", "r1", alg="rsa-sha1"),
     "FAIL", ["dkim=fail", "rsa-sha1"]),
    # RFC 8301 §3.2: keys shorter than 1024 bits MUST NOT be considered valid.
    ("rsa_512_bit_key_fails", lambda k: craft(msg(), k.rsa512, "example.com", "r512"),
     "FAIL", ["dkim=fail", "header.s=r512"]),
    # RFC 6376 §3.6.1 k=: the key type must match the signature algorithm.
    ("key_k_ed25519_rsa_signature_fails", lambda k: craft(msg(), k.rsa, "example.com", "ked"),
     "FAIL", ["dkim=permerror (key record k= does not match", "header.s=ked"]),
    ("key_k_rsa_ed25519_signature_fails", lambda k: craft(msg(), k.ed, "example.com", "krsa"),
     "FAIL", ["dkim=permerror (key record k= does not match", "header.s=krsa"]),
    # RFC 6376 §6.1.1: a malformed signature is a failed signature (PERMFAIL), not a reason to
    # give up on the message (PROCESSING_FAILED is for DNS trouble only).
    ("malformed_missing_h_fails", lambda k: craft(
        msg(), k.rsa, "example.com", "r1", tags="v=1; a=rsa-sha256; d=example.com; s=r1; "
        "bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; "),
     "FAIL", ["dkim=permerror"]),
    ("malformed_tag_list_fails", lambda k: craft(
        msg(), k.rsa, "example.com", "r1", tags="v=1; a=rsa-sha256; d=example.com; s=r1; "
        "h=from; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; ==; d=example.net; "),
     "FAIL", ["dkim=permerror"]),
    ("malformed_unknown_algorithm_fails", lambda k: craft(
        msg(), k.rsa, "example.com", "r1", alg="rsa-md5"),
     "FAIL", ["dkim=permerror"]),
    ("malformed_beside_good_signature_passes", lambda k: craft(
        b"DKIM-Signature: v=1; garbage\r\n" + msg(), k.rsa, "example.com", "r1"),
     "PASS", ["dkim=pass header.d=example.com header.s=r1", "dkim=permerror"]),
    # RFC 6376 §3.6.1 t=y: the signer is testing; treat the message as unsigned.
    ("testing_key_counts_as_unsigned", lambda k: craft(msg(), k.rsa, "example.com", "testing"),
     "GRAY", ["dkim=neutral", "header.s=testing"]),
    ("testing_key_beside_good_signature", lambda k: craft(
        craft(msg(), k.rsa, "example.com", "testing"), k.ed, "example.com", "ed"),
     "PASS", ["dkim=neutral", "dkim=pass header.d=example.com header.s=ed"]),
    # RFC 6376 §3.5 x=: an expired signature fails.
    ("expired_signature_fails", lambda k: craft(
        msg(), k.rsa, "example.com", "r1", extra="t=%d; x=%d; " % (time.time() - 7200,
                                                                    time.time() - 3600)),
     "FAIL", ["dkim=fail", "expired"]),
    ("unexpired_signature_passes", lambda k: craft(
        msg(), k.rsa, "example.com", "r1", extra="t=%d; x=%d; " % (time.time() - 60,
                                                                    time.time() + 86400)),
     "PASS", ["dkim=pass header.d=example.com"]),
    # RFC 6376 §3.5 i=: the identity's domain must be d= or a subdomain of it.
    ("identity_outside_d_fails", lambda k: craft(
        msg(), k.rsa, "example.com", "r1", extra="i=user@example.net; "),
     "FAIL", ["dkim=permerror"]),
    ("identity_lookalike_outside_d_fails", lambda k: craft(
        msg(), k.rsa, "example.com", "r1", extra="i=@badexample.com; "),
     "FAIL", ["dkim=permerror"]),
    ("identity_subdomain_of_d_passes", lambda k: craft(
        msg(), k.rsa, "example.com", "r1", extra="i=user@mail.example.com; "),
     "PASS", ["dkim=pass header.d=example.com"]),
    # RFC 6376 §5.4: the From field MUST be signed.
    ("signature_without_from_fails", lambda k: craft(
        msg(), k.rsa, "example.com", "r1", h="to:subject:date"),
     "FAIL", ["dkim=permerror", "From"]),
    ("unsigned_is_gray", lambda k: msg(), "GRAY", ["dkim=none"]),
]

# (file under tests/data/dkim, DKIM verdict, fragments), as SOURCES.md there says.
VECTORS = [
    ("rfc8463/signed-relaxed.eml", "PASS",
     ["dkim=pass header.d=football.example.com header.s=brisbane",
      "dkim=pass header.d=football.example.com header.s=test"]),
    ("rfc8463/signed-simple-draft.eml", "PASS",
     ["dkim=pass header.d=football.example.com header.s=brisbane",
      "dkim=pass header.d=football.example.com header.s=test"]),
    ("rfc8463/unsigned.eml", "GRAY", ["dkim=none"]),
    ("dkimpy/exim-ed25519.eml", "PASS", ["dkim=pass header.d=test.ex header.s=sed"]),
    ("opendkim/verify-ss.eml", "PASS", ["dkim=pass header.d=example.com header.s=test"]),
    ("opendkim/verify-ss-bad.eml", "FAIL", ["dkim=fail", "header.s=test"]),
    ("opendkim/verify-revoked.eml", "FAIL", ["header.s=revoked"]),
]


def wire(path):
    with open(os.path.join(DATA, path), "rb") as f:
        data = f.read().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    # SMTP transparency (RFC 5321 §4.5.2)
    return b"\r\n".join(b"." + line if line.startswith(b".") else line
                        for line in data.split(b"\r\n"))


class DkimConformance(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.keys = Keys()
        cls.dns = DnsServer(zones(cls.keys)).start()
        cls.sluice = auth_sluice(cls.dns.port)

    @classmethod
    def tearDownClass(cls):
        cls.sluice.stop()
        cls.dns.stop()
        shutil.rmtree(cls.keys.dir, ignore_errors=True)

    def check(self, user, data, verdict, fragments):
        session(self.sluice, "x@example.com", data, rcpt=user + "@example.test")
        fields = header_fields(stored_one(self, self.sluice, user))
        self.assertEqual(dict(fields).get("X-Sluice-DKIM-Verdict"), verdict, fields)
        ar = [v for n, v in fields if n == "Authentication-Results"]
        self.assertEqual(len(ar), 1, fields)
        for frag in fragments:
            self.assertIn(frag, ar[0])

    def test_vectors(self):
        for i, (path, verdict, fragments) in enumerate(VECTORS):
            with self.subTest(vector=path):
                self.check("vector%d" % i, wire(path), verdict, fragments)


def _make(case):
    name, make, verdict, fragments = case

    def test(self):
        self.check(name.replace("_", "-"), make(self.keys), verdict, fragments)
    test.__name__ = "test_" + name
    return test


for _case in CASES:
    setattr(DkimConformance, "test_" + _case[0], _make(_case))


if __name__ == "__main__":
    unittest.main()
