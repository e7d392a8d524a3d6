"""Shared DNS data and helpers for the authentication tests: DKIM keys made with
opendkim-genkey, zones for SPF/DKIM/DMARC cases, messages signed with the dkim-sign test tool
(built next to the sluice binary)."""
import base64
import os
import re
import subprocess
import tempfile
import unittest

from dns_harness import DnsServer, txt
import shutil

from sluice_harness import BIN, Sluice

DKIM_SIGN = os.path.join(os.path.dirname(os.path.abspath(BIN)), "dkim-sign")


def genkey(directory, domain, selector, bits=1024):
    """Returns (private key path, public TXT rdata) from opendkim-genkey."""
    subprocess.run(["opendkim-genkey", "-b", str(bits), "-d", domain, "-s", selector,
                    "-D", directory], check=True, capture_output=True)
    with open(os.path.join(directory, selector + ".txt")) as f:
        text = f.read()
    parts = re.findall(r'"([^"]*)"', text)
    return os.path.join(directory, selector + ".private"), txt("".join(parts))


def genkey_ed25519(directory, name):
    """An ed25519 key (RFC 8463) made with openssl; returns (PEM path, TXT rdata)."""
    path = os.path.join(directory, name + ".pem")
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", path], check=True,
                   capture_output=True)
    der = subprocess.run(["openssl", "pkey", "-in", path, "-pubout", "-outform", "DER"],
                         check=True, capture_output=True).stdout
    return path, txt("v=DKIM1; k=ed25519; p=" + base64.b64encode(der[-32:]).decode())


class Keys:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="sluice-dkim-")
        self.sel1_key, self.sel1_txt = genkey(os.path.join(self.dir), "example.com", "sel1")
        d2 = os.path.join(self.dir, "net")
        os.makedirs(d2)
        self.net_key, self.net_txt = genkey(d2, "example.net", "sel2")
        self.ed_key, self.ed_txt = genkey_ed25519(self.dir, "ed")


def zones(keys):
    """The test zones. Client addresses in SMTP tests are 127.0.0.1."""
    com = [
        ("@", "TXT", txt("v=spf1 ip4:127.0.0.1 -all")),
        ("@", "MX", "10 mxhost.example.com."),
        ("mxhost", "A", "127.0.0.1"),
        ("mxhost", "A", "192.0.2.25"),
        ("host", "A", "192.0.2.80"),
        ("host", "AAAA", "2001:db8::80"),
        ("_dmarc", "TXT", txt("v=DMARC1; p=reject")),
        ("sel1._domainkey", "TXT", keys.sel1_txt),
        ("ed._domainkey", "TXT", keys.ed_txt),
        ("revoked._domainkey", "TXT", txt("v=DKIM1; k=rsa; p=")),
        ("helo", "TXT", txt("v=spf1 ip4:127.0.0.1 -all")),
        # SPF mechanisms, judged with explicit client addresses by `sluice spf-query`
        ("spf-fail", "TXT", txt("v=spf1 ip4:192.0.2.1 -all")),
        ("spf-soft", "TXT", txt("v=spf1 ip4:192.0.2.1 ~all")),
        ("spf-neutral", "TXT", txt("v=spf1 ip4:192.0.2.1 ?all")),
        ("spf-perm", "TXT", txt("v=spf1 ip4:127.0.0.1 bogus:x -all")),
        ("spf-ip4", "TXT", txt("v=spf1 ip4:192.0.2.0/24 -all")),
        ("spf-ip6", "TXT", txt("v=spf1 ip6:2001:db8::/32 -all")),
        ("spf-a", "TXT", txt("v=spf1 a:host.example.com -all")),
        ("spf-mx", "TXT", txt("v=spf1 mx:example.com -all")),
        ("spf-inc", "TXT", txt("v=spf1 include:spf-ip4.example.com -all")),
        ("spf-redirect", "TXT", txt("v=spf1 redirect=spf-ip4.example.com")),
        ("spf-exists", "TXT", txt("v=spf1 exists:%{i}.ok.example.com -all")),
        ("192.0.2.77.ok", "A", "127.0.0.2"),
        ("spf-macro", "TXT", txt("v=spf1 exists:%{l}.users.example.com -all")),
        ("alice.users", "A", "127.0.0.2"),
        # RFC 7208 §7.3: %{d3} of a three-label domain is the whole domain (libspf2 mis-expands
        # a DIGIT transformer that keeps every part); %{i4} of an IPv4 address likewise
        ("spf-d3", "TXT", txt("v=spf1 exists:%{d3}._d.example.com -all")),
        ("spf-i4", "TXT", txt("v=spf1 exists:%{i4}._i.example.com -all")),
        ("spf-d3.example.com._d", "A", "127.0.0.2"),
        ("192.0.2.44._i", "A", "127.0.0.2"),
        ("spf-loop", "TXT", txt("v=spf1 include:spf-loop.example.com -all")),
        ("spf-many", "TXT", txt("v=spf1 " + " ".join("a:n%d.example.com" % i
                                                      for i in range(12)) + " -all")),
        ("spf-two", "TXT", txt("v=spf1 -all")),
        ("spf-two", "TXT", txt("v=spf1 +all")),
        ("spf-loopback", "TXT", txt("v=spf1 ip4:192.0.2.1 -all")),
        # DMARC variants (the org domain example.com has p=reject)
        ("_dmarc.pnone", "TXT", txt("v=DMARC1; p=none")),
        ("_dmarc.q", "TXT", txt("v=DMARC1; p=quarantine")),
        ("_dmarc.strict", "TXT", txt("v=DMARC1; p=reject; aspf=s")),
        ("_dmarc.relaxed", "TXT", txt("v=DMARC1; p=reject; aspf=r")),
        ("_dmarc.sdkim", "TXT", txt("v=DMARC1; p=quarantine; adkim=s")),
        ("_dmarc.pct0", "TXT", txt("v=DMARC1; p=reject; pct=0")),
        ("_dmarc.pct100", "TXT", txt("v=DMARC1; p=quarantine; pct=100")),
        ("_dmarc.bad", "TXT", txt("v=DMARC1; p=bogus")),
    ]
    for i in range(12):
        com.append(("n%d" % i, "A", "192.0.2.%d" % (100 + i)))
    net = [("sel2._domainkey", "TXT", keys.net_txt)]
    couk = [("_dmarc", "TXT", txt("v=DMARC1; p=reject; sp=quarantine")),
            ("@", "TXT", txt("v=spf1 ip4:127.0.0.1 -all"))]
    return {"example.com": com, "example.net": net, "example.co.uk": couk}


def start_dns(keys):
    return DnsServer(zones(keys), broken=["servfail.example.org"]).start()


class ZonesTestCase(unittest.TestCase):
    """A test class whose tests share the test zones (keys in cls.keys, the nsd serving them in
    cls.dns), started once for the class. Subclasses that set up more call super() first."""

    @classmethod
    def setUpClass(cls):
        cls.keys = Keys()
        cls.dns = start_dns(cls.keys)

    @classmethod
    def tearDownClass(cls):
        cls.dns.stop()
        shutil.rmtree(cls.keys.dir, ignore_errors=True)


def sign(msg, key, domain, selector, canon="relaxed/relaxed", length=False,
         alg="rsa-sha256"):
    args = [DKIM_SIGN, "-d", domain, "-s", selector, "-k", key, "-c", canon, "-a", alg]
    if length:
        args.append("-l")
    # libopendkim 2.11 leaks an ed25519 private key it loads for signing (sluice only
    # verifies), so the signing tool runs without leak detection under ASan.
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0")
    return subprocess.run(args, input=msg, check=True, capture_output=True, env=env).stdout


def message(frm="a@example.com", extra=b"", body=b"Hello.\r\n"):
    head = b""
    if frm is not None:
        head += b"From: " + frm.encode() + b"\r\n"
    return (head + b"To: u@example.test\r\nSubject: auth test\r\n"
            b"Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <t@example.com>\r\n" +
            extra + b"\r\n" + body)


def header_fields(data):
    """[(name, unfolded value)] of a stored message's header section."""
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    fields = []
    for line in head.split("\r\n"):
        if line[:1] in (" ", "\t") and fields:
            fields[-1][1] += " " + line.strip()
        elif ":" in line:
            n, v = line.split(":", 1)
            fields.append([n, v.strip()])
    return [(n, v) for n, v in fields]


def auth_sluice(dns_port, server_extra=""):
    """A started sluice with the authentication checks on, resolving through dns_port, storing
    every example.test message in var/mail/{domain}/{user}."""
    return Sluice(server_extra="auth_checks = true," + server_extra, rules="""
dns { servers = { "127.0.0.1:%d" }, timeout_ms = 3000 }
rule_set "main" {
  rule { name = "store", recipients = { "example.test" },
         actions = { store { maildir = "var/mail/{domain}/{user}" } } },
}
""" % dns_port).start()


def check_block(text):
    """`sluice check` of a minimal config with a top-level block text at line 2."""
    d = tempfile.mkdtemp(prefix="sluice-cfg-")
    try:
        path = os.path.join(d, "c.lua")
        with open(path, "w") as f:
            f.write('server { listen = { "127.0.0.1:1" }, domains = { "example.test" } }\n'
                    + text + '\nrule_set "main" { }\n')
        return subprocess.run([BIN, "check", "-c", path], capture_output=True, text=True)
    finally:
        shutil.rmtree(d, ignore_errors=True)
