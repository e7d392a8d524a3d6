"""One header reader for every check (core/headers.h): crafted header sections sent through real
SMTP, with real DNS from nsd, must show the same From to DMARC (Authentication-Results
header.from), to the rules' `from` condition and to a Lua script (msg:header, msg:headers,
msg:from). Cases: obsolete "From :" with white space before the colon, a colon-less line
before (or between) From fields, a field name with a space, several From fields; and a DKIM
signature over "From :" (libopendkim gets the fields as this reader splits them)."""
import os
import re
import shutil
import tempfile
import unittest

from auth_fixtures import genkey, header_fields, sign
from dns_harness import DnsServer, txt
from sluice_harness import Sluice, read_file

MAIL_FROM = "bounce@example.com"  # SPF pass for 127.0.0.1, aligned with example.com

PROBE = """
function handler(event, msg)
  local authors = { msg:from() }
  msg:add_header("X-Lua-From", msg:header("From") or "none")
  msg:add_header("X-Lua-From-Count", tostring(#msg:headers("From")))
  msg:add_header("X-Lua-Authors", #authors > 0 and table.concat(authors, ",") or "none")
  return { disposition = "CONTINUE" }
end
"""

RULES = """
dns { servers = { "127.0.0.1:%d" }, timeout_ms = 3000 }
rule_set "main" {
  rule { name = "from-com", recipients = { "example.test" }, when = { from = "example.com" },
         actions = { add_header { name = "X-Rule-From", value = "example.com" } } },
  rule { name = "from-net", recipients = { "example.test" }, when = { from = "example.net" },
         actions = { add_header { name = "X-Rule-From", value = "example.net" } } },
  rule { name = "probe", recipients = { "example.test" },
         actions = { lua { script = "probe.lua" },
                     store { maildir = "var/mail/{domain}/{user}" } } },
}
"""

TAIL = (b"To: u@example.test\r\nSubject: header test\r\n"
        b"Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <h@example.com>\r\n")

# (user, header lines before TAIL, the author addresses every reader must see, in order)
CASES = [
    ("space-before-colon", b"From : a@example.com\r\n", ["a@example.com"]),
    ("tab-before-colon", b"From\t \t: a@example.com\r\n", ["a@example.com"]),
    ("plain", b"From: a@example.com\r\n", ["a@example.com"]),
    # A colon-less line ends the header section: the From after it is body text.
    ("junk-first", b"X-Junk without a colon\r\nFrom: a@example.com\r\n", []),
    ("junk-between", b"From: a@example.com\r\nX-Junk without a colon\r\nFrom: b@example.net\r\n",
     ["a@example.com"]),
    ("junk-after-subject", b"Subject: first\r\nno colon here\r\nFrom: a@example.com\r\n", []),
    ("space-in-name", b"X Bad: name\r\nFrom: a@example.com\r\n", []),
    # Several From fields: every reader sees all of them; DMARC never passes.
    ("two-from", b"From: a@example.com\r\nFrom: b@example.net\r\n",
     ["a@example.com", "b@example.net"]),
    ("two-from-obsolete-first", b"From : b@example.net\r\nFrom: a@example.com\r\n",
     ["b@example.net", "a@example.com"]),
    ("folded-from", b"From:\r\n A <a@example.com>\r\n", ["a@example.com"]),
]


def domain(addr):
    return addr.rsplit("@", 1)[1]


class OneReader(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.keydir = tempfile.mkdtemp(prefix="sluice-hdr-")
        cls.key, key_txt = genkey(cls.keydir, "example.com", "sel")
        cls.dns = DnsServer({
            "example.com": [("@", "TXT", txt("v=spf1 ip4:127.0.0.1 -all")),
                            ("spf-fail", "TXT", txt("v=spf1 ip4:192.0.2.1 -all")),
                            ("sel._domainkey", "TXT", key_txt),
                            ("_dmarc", "TXT", txt("v=DMARC1; p=reject"))],
            "example.net": [("_dmarc", "TXT", txt("v=DMARC1; p=none"))],
        }).start()
        cls.sluice = Sluice(server_extra="auth_checks = true,", rules=RULES % cls.dns.port,
                            tls=False)
        with open(os.path.join(cls.sluice.dir, "probe.lua"), "w") as f:
            f.write(PROBE)
        cls.sluice.start()

    @classmethod
    def tearDownClass(cls):
        cls.sluice.stop()
        cls.dns.stop()
        shutil.rmtree(cls.sluice.dir, ignore_errors=True)
        shutil.rmtree(cls.keydir, ignore_errors=True)

    def send(self, user, data, mail_from=MAIL_FROM):
        c = self.sluice.raw()
        c.expect(220)
        c.expect(250, "EHLO client.example.net\r\n")
        c.expect(250, "MAIL FROM:<%s>\r\n" % mail_from)
        c.expect(250, "RCPT TO:<%s@example.test>\r\n" % user)
        c.expect(354, "DATA\r\n")
        c.send(data + b".\r\n")
        c.expect(250)
        c.send("QUIT\r\n")
        c.close()
        files = self.sluice.maildir("example.test", user)
        self.assertEqual(len(files), 1, self.sluice.read_log())
        return read_file(files[0])

    def check(self, user, head, authors):
        stored = self.send(user, head + TAIL + b"\r\nHello.\r\n")
        fields = header_fields(stored)
        get = lambda n: [v for k, v in fields if k == n]
        ar = get("Authentication-Results")
        self.assertEqual(len(ar), 1, fields)
        m = re.search(r"header\.from=([^\s;]+)", ar[0])
        dmarc_from = m.group(1) if m else None
        domains = sorted({domain(a) for a in authors})
        # DMARC
        if not authors:
            self.assertIsNone(dmarc_from, ar[0])
            self.assertIn("dmarc=permerror", ar[0])
        else:
            self.assertIn(dmarc_from, domains, ar[0])
        if len(authors) == 1:
            self.assertEqual(dmarc_from, domain(authors[0]), ar[0])
        if len(authors) > 1:
            self.assertNotIn("dmarc=pass", ar[0])
        # the rules' `from` condition
        self.assertEqual(sorted(get("X-Rule-From")), domains, fields)
        # the Lua API
        self.assertEqual(get("X-Lua-From-Count"), [str(len(authors))], fields)
        self.assertEqual(get("X-Lua-Authors"), [",".join(authors) or "none"], fields)
        lua_from = get("X-Lua-From")
        self.assertEqual(len(lua_from), 1, fields)
        if authors:
            self.assertIn(authors[0], lua_from[0])
        else:
            self.assertEqual(lua_from[0], "none")

    def test_dkim_over_obsolete_from(self):
        """SPF fails; DMARC can pass only through a DKIM signature that covers the From field
        written "From :", which libopendkim must see as the From the other checks see."""
        msg = sign(b"From : a@example.com\r\n" + TAIL + b"\r\nHello.\r\n", self.key,
                   "example.com", "sel")
        self.assertIn(b"h=from:", msg.lower().replace(b"\r\n\t", b"").replace(b" ", b""))
        stored = self.send("dkim-obsolete", msg, mail_from="x@spf-fail.example.com")
        fields = header_fields(stored)
        ar = [v for k, v in fields if k == "Authentication-Results"]
        self.assertEqual(len(ar), 1, fields)
        self.assertIn("dkim=pass header.d=example.com", ar[0])
        self.assertIn("dmarc=pass", ar[0])
        self.assertIn("header.from=example.com", ar[0])
        self.assertEqual([v for k, v in fields if k == "X-Rule-From"], ["example.com"])
        self.assertEqual([v for k, v in fields if k == "X-Lua-Authors"], ["a@example.com"])


def _make(user, head, authors):
    def test(self):
        self.check(user, head, authors)
    return test


for _user, _head, _authors in CASES:
    setattr(OneReader, "test_" + _user.replace("-", "_"), _make(_user, _head, _authors))


if __name__ == "__main__":
    unittest.main()
