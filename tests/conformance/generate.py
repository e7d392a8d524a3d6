"""The seeded generator of `make conformance`: sender-authentication situations, the DNS data
they need (one root zone for nsd, every case under names of its own so that no cache of any
implementation can carry an answer from one case to another) and, for every check, the answers
the RFCs allow, each with the section that decides it.

The expectations are computed by small evaluators written from the RFCs (RFC 7208 check_host()
over the generated zone data, the DKIM outcome each signature was built to have, RFC 7489 DMARC
from those and the public suffix list). They are the judge of a disagreement, so they are kept
to what the RFCs decide: where an RFC leaves a choice, every allowed answer is listed.

    cases, records = generate(seed, count, keys)
"""
import base64
import hashlib
import ipaddress
import random
import re

PSL_PATH = "/usr/share/publicsuffix/public_suffix_list.dat"
SERVFAIL_ZONE = "servfail.example.org"
NOW = 1796000000  # a fixed "now" is not needed: t=/x= are far from any real clock

# Organizational domains under listed public suffixes, and one (`example`) that the list does
# not have: its default rule `*` makes `example` the suffix and `tN.example` the org domain.
SUFFIXES = ["com", "net", "org", "co.uk", "example"]


# --- public suffix list (RFC 7489 §3.2) ----------------------------------------------------
class Psl:
    def __init__(self, path=PSL_PATH):
        self.rules, self.wild, self.exc = set(), set(), set()
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line or line.startswith("//"):
                    continue
                if line.startswith("!"):
                    self.exc.add(line[1:])
                elif line.startswith("*."):
                    self.wild.add(line[2:])
                else:
                    self.rules.add(line)

    def org_domain(self, name):
        labels = name.lower().rstrip(".").split(".")
        suffix_len = 1  # the default rule "*"
        for i in range(len(labels)):
            cand = ".".join(labels[i:])
            if cand in self.exc:
                suffix_len = max(suffix_len, len(labels) - i - 1)
            elif cand in self.rules:
                suffix_len = max(suffix_len, len(labels) - i)
            elif i + 1 < len(labels) and ".".join(labels[i + 1:]) in self.wild:
                suffix_len = max(suffix_len, len(labels) - i)
        if len(labels) <= suffix_len:
            return None
        return ".".join(labels[-(suffix_len + 1):])


# --- zone data --------------------------------------------------------------------------
class Zone:
    """name -> {rtype: [rdata]}; names absolute without the final dot, lower case."""

    def __init__(self):
        self.names = {}

    def add(self, name, rtype, rdata):
        self.names.setdefault(name.lower(), {}).setdefault(rtype, []).append(rdata)

    def records(self):
        out = []
        for name, types in self.names.items():
            for rtype, values in types.items():
                for v in values:
                    out.append((name, rtype, v))
        return out


class TempError(Exception):
    pass


def lookup(zone, name, rtype):
    """(exists, answers) as an authoritative server for the root zone would give them."""
    name = name.lower().rstrip(".")
    if name == SERVFAIL_ZONE or name.endswith("." + SERVFAIL_ZONE):
        raise TempError(name)
    node = zone.names.get(name)
    exists = node is not None or any(n.endswith("." + name) for n in zone.names)
    return exists, list((node or {}).get(rtype, []))


# --- SPF: RFC 7208 check_host() over the zone -----------------------------------------------
class PermError(Exception):
    pass


def macro_expand(spec, ip, sender, domain, helo):
    local, sdom = sender.rsplit("@", 1)

    def one(m):
        letter, digits, rev = m.group(1), m.group(2), m.group(3)
        value = {"i": ip, "l": local, "o": sdom, "d": domain, "h": helo,
                 "s": sender}[letter.lower()]
        parts = value.split(".")
        if rev:
            parts.reverse()
        if digits:
            parts = parts[-int(digits):]
        return ".".join(parts)
    spec = re.sub(r"%\{([a-zA-Z])(\d*)(r?)\}", one, spec)
    return spec.replace("%%", "%").replace("%_", " ").replace("%-", "%20")


class SpfEval:
    def __init__(self, zone, ip, helo):
        self.zone, self.ip, self.helo = zone, ipaddress.ip_address(ip), helo
        self.lookups = 0
        self.voids = 0
        self.why = set()

    def count(self):
        self.lookups += 1
        if self.lookups > 10:
            self.why.add("RFC 7208 §4.6.4 (more than 10 DNS-querying terms: permerror)")
            raise PermError("lookup limit")

    def void(self, exists, answers):
        if not answers:
            self.voids += 1
            if self.voids > 2:
                self.why.add("RFC 7208 §4.6.4 (more than 2 void lookups: permerror)")
                raise PermError("void limit")

    def addrs(self, name):
        exists, a = lookup(self.zone, name, "A")
        return exists, a

    def check_host(self, domain, sender):
        try:
            _, txts = lookup(self.zone, domain, "TXT")
        except TempError:
            self.why.add("RFC 7208 §4.4 (DNS error fetching the record: temperror)")
            return "temperror"
        recs = [t for t in txts if re.match(r"(?i)v=spf1( |$)", t)]
        if not recs:
            self.why.add("RFC 7208 §4.5 (no SPF record: none)")
            return "none"
        if len(recs) > 1:
            self.why.add("RFC 7208 §4.5 (two SPF records: permerror)")
            return "permerror"
        try:
            return self.evaluate(recs[0], domain, sender)
        except PermError:
            return "permerror"
        except TempError:
            self.why.add("RFC 7208 §5 (DNS error during evaluation: temperror)")
            return "temperror"

    def evaluate(self, record, domain, sender):
        terms = record.split()[1:]
        redirect = None
        mechs = []
        for t in terms:
            if t.startswith("redirect="):
                if redirect is not None:
                    self.why.add("RFC 7208 §6 (redirect twice: permerror)")
                    raise PermError("two redirects")
                redirect = t[9:]
                continue
            if t.startswith("exp="):
                continue
            q = "+"
            if t[0] in "+-~?":
                q, t = t[0], t[1:]
            m = re.match(r"(?i)(all|ip4|a|mx|include|exists)(?::([^/]*))?(?:/(\d+))?$", t)
            if not m:
                self.why.add("RFC 7208 §4.6.1/§12 (record syntax error: permerror)")
                raise PermError("syntax: " + t)
            kind, arg, cidr = m.group(1).lower(), m.group(2), m.group(3)
            if arg == "" or (kind in ("include", "exists") and not arg) or (
                    cidr is not None and int(cidr) > 32):
                self.why.add("RFC 7208 §4.6.1/§12 (record syntax error: permerror)")
                raise PermError("syntax: " + t)
            mechs.append((q, kind, arg, cidr))
        for q, kind, arg, cidr in mechs:
            if self.match(kind, arg, cidr, domain, sender):
                self.why.add("RFC 7208 §4.6.2 (first matching mechanism decides)")
                return {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}[q]
        # RFC 7208 §6.1: redirect only when no mechanism matched and there is no "all"
        if redirect is not None and not any(k == "all" for _, k, _, _ in mechs):
            self.count()
            target = macro_expand(redirect, str(self.ip), sender, domain, self.helo)
            r = self.check_host(target, sender)
            if r == "none":
                self.why.add("RFC 7208 §6.1 (redirect to a domain without a record: permerror)")
                return "permerror"
            return r
        self.why.add("RFC 7208 §4.7 (no match: neutral)")
        return "neutral"

    def in_net(self, addr, cidr):
        return self.ip in ipaddress.ip_network("%s/%s" % (addr, cidr or 32), strict=False)

    def match(self, kind, arg, cidr, domain, sender):
        target = macro_expand(arg, str(self.ip), sender, domain, self.helo) if arg else domain
        if kind == "all":
            return True
        if kind == "ip4":
            return self.in_net(arg, cidr)
        self.count()
        if kind == "a":
            exists, a = self.addrs(target)
            self.void(exists, a)
            return any(self.in_net(x, cidr) for x in a)
        if kind == "mx":
            _, mx = lookup(self.zone, target, "MX")
            self.void(True, mx)
            if len(mx) > 10:
                self.why.add("RFC 7208 §4.6.4 (more than 10 MX names: permerror)")
                raise PermError("mx limit")
            for rr in mx:
                _, a = self.addrs(rr.split()[1])
                if any(self.in_net(x, cidr) for x in a):
                    return True
            return False
        if kind == "exists":
            exists, a = self.addrs(target)
            self.void(exists, a)
            return bool(a)
        if kind == "include":
            r = self.check_host(target, sender)
            if r == "pass":
                return True
            if r in ("fail", "softfail", "neutral"):
                return False
            if r == "temperror":
                raise TempError(target)
            self.why.add("RFC 7208 §5.2 (include of none or permerror: permerror)")
            raise PermError("include " + r)
        raise AssertionError(kind)


def spf_expect(zone, ip, helo, mail_from):
    sender = mail_from or "postmaster@" + helo
    domain = sender.rsplit("@", 1)[1]
    ev = SpfEval(zone, ip, helo)
    r = ev.check_host(domain, sender)
    return r, domain, sorted(ev.why)


# --- DKIM signing (RFC 6376 §3.4 canonicalization, §3.7 hashes) ----------------------------
def relaxed_body(body):
    body = re.sub(rb"[ \t]+\r\n", b"\r\n", body)
    body = re.sub(rb"[ \t]+", b" ", body)
    while body.endswith(b"\r\n"):
        body = body[:-2]
    return body + b"\r\n" if body else b""


def simple_body(body):
    while body.endswith(b"\r\n\r\n"):
        body = body[:-2]
    return body if body.endswith(b"\r\n") else body + b"\r\n"


def header_fields(head):
    out = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and out:
            out[-1][1] += b"\r\n" + line
        else:
            n, v = line.split(b":", 1)
            out.append([n, v])
    return out


def canon_header(name, value, relaxed):
    if not relaxed:
        return name + b":" + value + b"\r\n"
    value = re.sub(rb"\r\n", b"", value)
    value = re.sub(rb"[ \t]+", b" ", value).strip()
    return name.strip().lower() + b":" + value + b"\r\n"


def dkim_sign(msg, key, d, s, canon="relaxed/relaxed", h="from:to:subject:date",
              alg=None, length=False, extra=""):
    alg = alg or key.alg
    hc, bc = canon.split("/")
    head, body = msg.split(b"\r\n\r\n", 1)
    cb = relaxed_body(body) if bc == "relaxed" else simple_body(body)
    ltag = ""
    if length:
        ltag = "l=%d; " % len(cb)
    bh_hash = hashlib.sha1 if alg == "rsa-sha1" else hashlib.sha256
    bh = base64.b64encode(bh_hash(cb).digest()).decode()
    tags = "v=1; a=%s; c=%s; d=%s; s=%s; h=%s; %s%sbh=%s; b=" % (alg, canon, d, s, h, ltag,
                                                                extra, bh)
    available = header_fields(head)
    data = b""
    for name in [n.strip().encode() for n in h.split(":") if n.strip()]:
        for i in range(len(available) - 1, -1, -1):  # RFC 6376 §5.4.2: bottom up
            if available[i] and available[i][0].strip().lower() == name.lower():
                data += canon_header(available[i][0], available[i][1], hc == "relaxed")
                available[i] = None
                break
    sig_field = canon_header(b"DKIM-Signature", b" " + tags.encode(), hc == "relaxed")
    data += sig_field[:-2]  # without its CRLF (§3.7)
    sig = base64.b64encode(key.sign(data, alg)).decode()
    return b"DKIM-Signature: " + tags.encode() + sig.encode() + b"\r\n" + msg


# --- the generator --------------------------------------------------------------------------
WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliett kilo lima mike "
         "november oscar papa quebec romeo sierra tango uniform victor whiskey").split()


class Case:
    def __init__(self, n):
        self.n = n
        self.id = "c%04d" % n
        self.tags = []     # features, for the report and the expected-failures list
        self.expect = {}   # check -> {"allowed": set, "why": [sections]}
        self.dkim_sigs = []  # (description, allowed results, sections)


def build_message(rng, case, from_fields):
    lines = []
    for f in from_fields:
        lines.append(b"From: " + f.encode())
    lines += [b"To: <rcpt@example.test>",
              b"Subject: conformance case " + case.id.encode() + b" " +
              rng.choice(WORDS).encode(),
              b"Date: Mon, 07 Dec 2026 10:00:00 +0000",
              b"Message-ID: <" + case.id.encode() + b"@conformance.example>"]
    body = b""
    for _ in range(rng.randint(1, 6)):
        words = [rng.choice(WORDS) for _ in range(rng.randint(1, 9))]
        sep = rng.choice([" ", " ", "  ", "\t"])
        body += sep.join(words).encode() + rng.choice([b"", b" ", b"\t"]) + b"\r\n"
    if rng.random() < 0.2:
        body += b"\r\n\r\n"
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


class Generator:
    def __init__(self, seed, keys, psl=None):
        self.rng = random.Random(seed)
        self.keys = keys
        self.psl = psl or Psl()
        self.zone = Zone()
        self.pending = []  # (exists macro-spec, its record's domain, should match)

    # ---- names
    def org(self, case):
        suffix = self.rng.choice(SUFFIXES)
        if suffix == "example":
            case.tags.append("unlisted-suffix")
        return "%s.%s" % (case.id, suffix)

    def sub(self, base, label=None):
        return "%s.%s" % (label or self.rng.choice(["mail", "news", "a.b", "eu", "x1"]), base)

    # ---- SPF
    def spf_record(self, case, domain, ip, depth=0):
        """Publishes an SPF situation at domain; returns nothing (check_host() decides)."""
        rng, z = self.rng, self.zone
        kind = rng.choices(["normal", "none", "nxdomain", "syntax", "two", "servfail",
                            "limit", "void"], [60, 6, 4, 6, 3, 3, 5, 5])[0] if depth == 0 \
            else rng.choices(["normal", "none", "syntax"], [85, 10, 5])[0]
        case.tags.append("spf-" + kind)
        if kind == "none":
            z.add(domain, "A", "192.0.2.1")
            return domain
        if kind == "nxdomain":
            return domain
        if kind == "servfail":
            return None  # the caller moves the domain under the SERVFAIL zone
        if kind == "two":
            z.add(domain, "TXT", "v=spf1 ip4:%s -all" % ip)
            z.add(domain, "TXT", "v=spf1 -all")
            return domain
        if kind == "syntax":
            z.add(domain, "TXT", rng.choice([
                "v=spf1 ip4:%s/33 -all" % ip, "v=spf1 a: -all", "v=spf1 bogus:%s -all" % domain,
                "v=spf1 include: -all", "v=spf1 redirect=a.%s redirect=b.%s" % (domain, domain),
                "v=spf1 ip4:%s -all foo" % ip, "v=spf1 mx:%s/40 ~all" % domain]))
            return domain
        terms = []
        if kind == "limit":
            n = rng.randint(9, 13)
            for i in range(n):
                name = "l%d.%s" % (i, domain)
                z.add(name, "A", "192.0.2.%d" % (10 + i))
                terms.append("a:" + name)
            if rng.random() < 0.5:
                terms.append("ip4:" + ip)
            terms.append(rng.choice(["-all", "~all"]))
        elif kind == "void":
            n = rng.randint(2, 4)
            for i in range(n):
                terms.append(rng.choice(["a:v%d.%s" % (i, domain),
                                         "exists:v%d.%s" % (i, domain)]))
            terms.append(rng.choice(["ip4:%s" % ip, "ip4:192.0.2.99"]))
            terms.append(rng.choice(["-all", "~all", "?all"]))
        else:
            for _ in range(rng.randint(0, 4)):
                terms.append(self.spf_term(case, domain, ip, depth))
            if rng.random() < 0.15 and depth < 2:
                tgt = "r.%s" % domain
                self.spf_record(case, tgt, ip, depth + 1)
                terms.append("redirect=" + tgt)
                case.tags.append("spf-redirect")
            else:
                terms.append(rng.choice(["-all", "~all", "?all", "+all", "-all", "-all", ""]))
        z.add(domain, "TXT", " ".join(["v=spf1"] + [t for t in terms if t]))
        return domain

    def spf_term(self, case, domain, ip, depth):
        rng, z = self.rng, self.zone
        hit = rng.random() < 0.4
        q = rng.choice(["", "", "+", "-", "~", "?"])
        other = "192.0.2.%d" % rng.randint(1, 254)
        kind = rng.choice(["ip4", "ip4", "a", "mx", "include", "exists", "macro"])
        if kind == "include" and depth >= 2:
            kind = "ip4"
        case.tags.append("spf-" + kind)
        if kind == "ip4":
            if hit:
                cidr = rng.choice(["", "/24", "/16", "/8", "/32"])
                net = str(ipaddress.ip_network(ip + (cidr or "/32"), strict=False).network_address)
                return q + "ip4:" + (ip if not cidr else net + cidr)
            return q + "ip4:" + other
        if kind == "a":
            name = "h%d.%s" % (rng.randint(0, 99), domain)
            z.add(name, "A", ip if hit else other)
            cidr = rng.choice(["", "", "/24"])
            return q + "a:" + name + cidr
        if kind == "mx":
            name = "m.%s" % domain
            if name not in z.names or "MX" not in z.names[name]:
                for i in range(rng.randint(1, 3)):
                    host = "mx%d.%s" % (i, name)
                    z.add(name, "MX", "%d %s." % (10 * i, host))
                    z.add(host, "A", ip if (hit and i == 0) else other)
            return q + "mx:" + name
        if kind == "include":
            tgt = "i%d.%s" % (rng.randint(0, 999), domain)
            if tgt in z.names:
                return q + "ip4:" + other
            self.spf_record(case, tgt, ip, depth + 1)
            return q + "include:" + tgt
        if kind == "exists":
            name = "e%d.%s" % (rng.randint(0, 99), domain)
            if hit:
                z.add(name, "A", "127.0.0.2")
            return q + "exists:" + name
        # macros (RFC 7208 §7)
        case.tags.append("spf-macros")
        macro = rng.choice(["%{i}", "%{ir}", "%{l}", "%{o}", "%{d}", "%{h}", "%{d2}",
                            "%{ir}.%{v}"])
        if macro == "%{ir}.%{v}":
            macro = "%{ir}"
        case.tags.append("spf-macro-" + macro)
        spec = macro + "._m." + domain
        self.pending.append((spec, domain, hit))
        return q + "exists:" + spec

    def fix_macros(self, ip, sender, helo):
        """The names that exists terms with macros are to find are published once the
        sender and HELO are known."""
        for spec, domain, hit in self.pending:
            if hit:
                self.zone.add(macro_expand(spec, ip, sender, domain, helo), "A", "127.0.0.2")
        self.pending = []

    # ---- DKIM
    def dkim_signatures(self, case, msg, from_domain, mail_domain, other_domain):
        rng, z = self.rng, self.zone
        n = rng.choices([0, 1, 2, 3], [15, 55, 22, 8])[0]
        sigs = []
        post = []  # changes made after all signatures
        # a From domain under the SERVFAIL zone: its org domain (example.org) is not the
        # case's own, so signatures stay under the From domain (and are temperror)
        base = from_domain if SERVFAIL_ZONE in from_domain else (
            self.psl.org_domain(from_domain) or from_domain)
        for i in range(n):
            d = rng.choice([from_domain, base, "s%d.%s" % (i, base), other_domain,
                            mail_domain])
            sel = "sel%d" % i
            keyname = rng.choices(["rsa1024", "rsa2048", "rsa4096", "ed25519"],
                                  [30, 35, 10, 25])[0]
            key = self.keys[keyname]
            canon = rng.choice(["relaxed/relaxed", "simple/simple", "relaxed/simple",
                                "simple/relaxed"])
            h = rng.choice(["from:to:subject:date", "from:subject:date:message-id",
                            "from:from:to:subject", "from:to:subject:date:from"])
            outcome = rng.choices(
                ["pass", "body", "header", "nokey", "revoked", "brokenkey", "kmismatch",
                 "expired", "future", "xbeforet", "length", "sha1", "nofrom", "servfail",
                 "addfrom", "testing"],
                [40, 6, 6, 5, 3, 3, 3, 3, 3, 2, 6, 2, 2, 2, 3, 2])[0]
            if outcome == "servfail" or SERVFAIL_ZONE in d:
                outcome = "servfail"
                d = "d%d.%s.%s" % (i, case.id, SERVFAIL_ZONE)
            alg = key.alg
            extra = ""
            length = False
            allowed, why = {"pass"}, "RFC 6376 §6.1 (a valid signature: pass)"
            record = key.record()
            desc = "%s %s d=%s c=%s h=%s" % (keyname, outcome, d, canon, h)
            if outcome == "body":
                post.append(("body", i))
                allowed, why = {"fail"}, "RFC 6376 §3.7, RFC 8601 §2.7.1 (body hash mismatch: fail)"
            elif outcome == "header":
                post.append(("subject", i))
                allowed, why = {"fail"}, "RFC 6376 §3.7, RFC 8601 §2.7.1 (signed header changed: fail)"
            elif outcome == "nokey":
                record = None
                allowed = {"permerror", "fail"}
                why = "RFC 6376 §6.1.2 (no key: PERMFAIL; RFC 8601 maps it to fail or permerror)"
            elif outcome == "revoked":
                record = "v=DKIM1; k=%s; p=" % ("ed25519" if keyname == "ed25519" else "rsa")
                allowed = {"permerror", "fail"}
                why = "RFC 6376 §3.6.1 (empty p=, key revoked: PERMFAIL)"
            elif outcome == "brokenkey":
                record = "v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA!!notbase64"
                allowed = {"permerror", "fail"}
                why = "RFC 6376 §6.1.2 (unusable key: PERMFAIL)"
            elif outcome == "kmismatch":
                record = key.record().replace(
                    "k=ed25519", "k=rsa") if keyname == "ed25519" else key.record().replace(
                    "k=rsa", "k=ed25519")
                allowed = {"permerror", "fail"}
                why = "RFC 6376 §3.6.1 (k= does not match the signature's algorithm: PERMFAIL)"
            elif outcome == "expired":
                extra = "t=1500000000; x=1500086400; "
                allowed = {"permerror", "fail"}
                why = "RFC 6376 §3.5 x=, §6.1.1 (expired: PERMFAIL (signature expired))"
            elif outcome == "future":
                extra = "t=4000000000; "
                allowed = {"pass", "permerror", "fail"}
                why = "RFC 6376 §3.5 t= (a timestamp in the future MAY be ignored)"
            elif outcome == "xbeforet":
                extra = "t=1700000000; x=1600000000; "
                allowed = {"permerror", "fail"}
                why = "RFC 6376 §3.5 (x= MUST be greater than t=: invalid signature)"
            elif outcome == "length":
                length = True
                post.append(("append", i))
                why = "RFC 6376 §3.5 l=, §8.2 (content after the signed length is not covered: pass)"
            elif outcome == "sha1":
                if keyname == "ed25519":
                    keyname, key = "rsa1024", self.keys["rsa1024"]
                    record = key.record()
                alg = "rsa-sha1"
                allowed = {"permerror", "fail"}
                why = "RFC 8301 §3.1 (rsa-sha1 MUST NOT be considered valid)"
            elif outcome == "nofrom":
                h = "to:subject:date"
                allowed = {"permerror", "fail"}
                why = "RFC 6376 §5.4, §6.1.1 (From not signed: PERMFAIL)"
            elif outcome == "servfail":
                record = None
                allowed = {"temperror"}
                why = "RFC 6376 §6.1.2 (key lookup DNS failure: TEMPFAIL), RFC 8601 §2.7.1"
            elif outcome == "addfrom":
                h = "from:from:to:subject:date"
                post.append(("addfrom", i))
                allowed = {"fail"}
                why = "RFC 6376 §5.4.2, §8.15 (over-signed From; a From added later breaks it)"
            elif outcome == "testing":
                record = key.record() + "; t=y"
                allowed = {"pass", "fail", "permerror", "none", "neutral"}
                why = ("RFC 6376 §3.6.1 t=y (testing mode: to be treated like unsigned mail, "
                       "the result word is the verifier's choice)")
            if "from:from" in h and outcome == "pass":
                why = "RFC 6376 §5.4.2 (over-signed From: a missing instance signs as null: pass)"
                case.tags.append("dkim-oversigned")
            case.tags.append("dkim-" + outcome)
            case.tags.append("dkim-" + keyname)
            if record is not None:
                z.add("%s._domainkey.%s" % (sel, d), "TXT", record)
            sigs.append((d, sel, key, canon, h, alg, length, extra))
            case.dkim_sigs.append((desc, allowed, why, d))
        for (d, sel, key, canon, h, alg, length, extra) in sigs:
            msg = dkim_sign(msg, key, d, sel, canon=canon, h=h, alg=alg, length=length,
                            extra=extra)
        for what, i in post:
            head, body = msg.split(b"\r\n\r\n", 1)
            if what == "body":
                body = body.replace(body.strip().split()[0], b"TAMPERED", 1)
            elif what == "subject":
                head = head.replace(b"Subject: conformance", b"Subject: Conformance", 1)
            elif what == "append":
                body = body + b"Appended after signing.\r\n"
            elif what == "addfrom":
                head = head + b"\r\nFrom: <intruder@" + other_domain.encode() + b">"
                case.tags.append("several-from")
            msg = head + b"\r\n\r\n" + body
        # a body change also breaks every other signature whose body it covers (and a header
        # change every one that signs the header): the expectation follows
        changed_body = any(w == "body" for w, _ in post)
        changed_subject = any(w == "subject" for w, _ in post)
        appended = any(w == "append" for w, _ in post)
        added_from = any(w == "addfrom" for w, _ in post)
        out = []
        for (desc, allowed, why, d), (_, _, _, _, h, _, length, _) in zip(case.dkim_sigs, sigs):
            if "pass" in allowed:
                broke = (changed_body or (appended and not length) or
                         (changed_subject and "subject" in h) or
                         (added_from and "from" in h.split(":")))
                if broke:
                    allowed = {"fail"}
                    why = "RFC 6376 §3.7 (the message was changed after this signature by another case step: fail)"
            out.append((desc, allowed, why, d))
        case.dkim_sigs = out
        return msg

    # ---- DMARC record
    def dmarc_record(self, case, name):
        rng = self.rng
        kind = rng.choices(["valid", "invalid-p", "v2", "none"], [80, 5, 3, 12])[0]
        if kind == "none":
            return None
        tags = ["v=DMARC1"]
        p = rng.choice(["none", "quarantine", "reject"])
        tags.append("p=" + (p if kind != "invalid-p" else "bogus"))
        rec = {"p": p if kind == "valid" else None, "sp": None, "np": None, "aspf": "r",
               "adkim": "r", "pct": 100, "valid": kind == "valid", "kind": kind}
        if rng.random() < 0.4:
            rec["sp"] = rng.choice(["none", "quarantine", "reject"])
            tags.append("sp=" + rec["sp"])
        if rng.random() < 0.2:
            rec["np"] = rng.choice(["none", "quarantine", "reject"])
            tags.append("np=" + rec["np"])
            case.tags.append("dmarc-np")
        for t in ("aspf", "adkim"):
            if rng.random() < 0.35:
                rec[t] = rng.choice(["r", "s"])
                tags.append("%s=%s" % (t, rec[t]))
        if rng.random() < 0.2:
            rec["pct"] = rng.choice([0, 50, 100])
            tags.append("pct=%d" % rec["pct"])
        if kind == "v2":
            tags[0] = "v=DMARC2"
            rec["valid"] = False
        self.zone.add("_dmarc." + name, "TXT", "; ".join(tags))
        case.tags.append("dmarc-record-" + kind)
        return rec

    # ---- one case
    def case(self, n):
        rng, z = self.rng, self.zone
        case = Case(n)
        ip = "127.%d.%d.%d" % (rng.randint(1, 254), rng.randint(0, 255), rng.randint(1, 254))
        org = self.org(case)
        from_domain = rng.choice([org, org, self.sub(org)])
        mshape = rng.choice(["same", "org", "sub", "other", "other"])
        other_org = "%s-o.%s" % (case.id, rng.choice(SUFFIXES))
        mail_domain = {"same": from_domain, "org": org, "sub": self.sub(org, "bounce"),
                       "other": other_org}[mshape]
        null_sender = rng.random() < 0.08
        helo = "mx.%s" % (mail_domain if rng.random() < 0.7 else other_org)
        spf_domain = helo if null_sender else mail_domain
        if null_sender:
            case.tags.append("null-sender")
        got = self.spf_record(case, spf_domain, ip)
        if got is None:  # SERVFAIL: the SPF domain moves under the broken zone
            spf_domain = "%s.%s" % (case.id, SERVFAIL_ZONE)
            if null_sender:
                helo = spf_domain
            else:
                mail_domain = spf_domain
        if not null_sender and rng.random() < 0.2:
            # HELO has its own record (sluice and the peers report the MAIL FROM identity)
            z.add(helo, "TXT", "v=spf1 ip4:%s -all" % ip)
        local = rng.choice(["bounce", "alice", "srs0", "b.c"])
        mail_from = "" if null_sender else "%s@%s" % (local, mail_domain)
        sender = mail_from or "postmaster@" + helo
        self.fix_macros(ip, sender, helo)

        # From fields
        from_fields = ["<author@%s>" % from_domain]
        shape = rng.choices(["one", "display", "two-fields", "two-mailboxes"], [80, 12, 4, 4])[0]
        if shape == "display":
            from_fields = ['"Author, A." <author@%s>' % from_domain]
        elif shape == "two-fields":
            from_fields.append("<second@%s>" % other_org)
            case.tags.append("several-from")
        elif shape == "two-mailboxes":
            from_fields = ["<author@%s>, <second@%s>" % (from_domain, other_org)]
            case.tags.append("several-from")
        if rng.random() < 0.03:
            from_domain = "%s.%s" % (case.id, SERVFAIL_ZONE)
            from_fields = ["<author@%s>" % from_domain]
            case.tags.append("from-servfail")

        # DMARC records at the From domain and/or its org domain
        from_org = self.psl.org_domain(from_domain)
        recs = {}
        for name in sorted({from_domain, from_org} - {None}):
            if SERVFAIL_ZONE in name:
                continue
            if name == from_domain or rng.random() < 0.7:
                recs[name] = self.dmarc_record(case, name)
        msg = build_message(rng, case, from_fields)
        msg = self.dkim_signatures(case, msg, from_domain, mail_domain, other_org)

        # expectations
        spf, _, spf_why = spf_expect(z, ip, helo, mail_from)
        case.expect["spf"] = {"allowed": {spf}, "why": spf_why}
        dk = self.dkim_aggregate(case.dkim_sigs)
        case.expect["dkim"] = dk
        case.expect["dmarc"] = self.dmarc_expect(case, from_domain, from_org, recs, spf,
                                                 spf_domain, shape)
        case.ip, case.helo, case.mail_from, case.message = ip, helo, mail_from, msg
        case.from_domain = from_domain
        return case

    @staticmethod
    def dkim_aggregate(sigs):
        """The message's DKIM answer: pass when any signature may pass, else the first of
        temperror, fail, permerror that every signature's allowed set permits (all the
        combinations the signatures' choices allow)."""
        if not sigs:
            return {"allowed": {"none"}, "why": ["RFC 8601 §2.7.1 (no signature: none)"]}
        combos = {()}
        for _, allowed, _, _ in sigs:
            combos = {c + (a,) for c in combos for a in allowed}
        out = set()
        for c in combos:
            for r in ("pass", "temperror", "fail", "permerror", "neutral", "none"):
                if r in c:
                    out.add(r)
                    break
        return {"allowed": out, "why": sorted({w for _, _, w, _ in sigs}),
                "sigs": [(d, sorted(a), w) for d, a, w, _ in sigs]}

    def dmarc_expect(self, case, from_domain, from_org, recs, spf, spf_domain, shape):
        why = []
        if shape in ("two-fields", "two-mailboxes") or "several-from" in case.tags:
            allowed = {"fail", "none", "permerror"}
            if SERVFAIL_ZONE in from_domain:  # and a record lookup that fails
                allowed.add("temperror")
            return {"allowed": allowed, "policy": None,
                    "why": ["RFC 7489 §6.6.1 (several From authors: the receiver decides, "
                            "but it must not pass)"]}
        if SERVFAIL_ZONE in from_domain:
            return {"allowed": {"temperror"}, "policy": None,
                    "why": ["RFC 7489 §6.6.3 (DNS error fetching the record: temperror)"]}
        # RFC 7489 §6.6.3: records without v=DMARC1 are discarded (then the org domain is
        # asked); a record with an invalid p= and no rua= means no DMARC processing (§6.3)
        rec = recs.get(from_domain)
        at_org = False
        if rec is None or rec["kind"] == "v2":
            if rec is not None:
                why.append("RFC 7489 §6.6.3 (v=DMARC2 at the From domain: discarded)")
            rec = recs.get(from_org) if from_org != from_domain else None
            at_org = True
        if rec is None or rec["kind"] == "v2":
            why.append("RFC 7489 §6.6.3 (no record at the From or organizational domain: none)")
            return {"allowed": {"none"}, "policy": None, "why": why}
        if rec["kind"] == "invalid-p":
            why.append("RFC 7489 §6.3 p= (invalid p= without rua=: no DMARC processing, none)")
            return {"allowed": {"none"}, "policy": None, "why": why}
        # alignment (RFC 7489 §3.1)
        def aligned(d, mode):
            if mode == "s":
                return d.lower() == from_domain.lower()
            return self.psl.org_domain(d) == from_org
        spf_ok = spf == "pass" and aligned(spf_domain, rec["aspf"])
        dkim_ok = False
        ambiguous = False
        for _, allowed, _, d in case.dkim_sigs:
            if "pass" in allowed and aligned(d, rec["adkim"]):
                if allowed == {"pass"}:
                    dkim_ok = True
                else:
                    ambiguous = True
        if spf_ok or dkim_ok:
            why.append("RFC 7489 §3.1, §6.6.2 (%s aligned pass: pass)" % (
                "SPF" if spf_ok else "DKIM"))
            return {"allowed": {"pass"}, "policy": None, "why": why}
        why.append("RFC 7489 §3.1, §6.6.2 (no aligned pass%s: fail)" % (
            ", strict alignment" if "s" in (rec["aspf"], rec["adkim"]) else ""))
        allowed = {"fail", "pass"} if ambiguous else {"fail"}
        policy = rec["p"]
        if at_org and from_domain != from_org:
            policy = rec["sp"] or rec["p"]
            why.append("RFC 7489 §6.3 (sp= for a subdomain, else p=)")
        policies = {policy}
        if rec["np"] and at_org and from_domain != from_org:
            # RFC 9989's np= (a From domain that does not exist); unknown to RFC 7489 §6.3
            policies.add(rec["np"])
        lower = {"reject": "quarantine", "quarantine": "none", "none": "none"}
        if rec["pct"] == 0:
            policies = {lower[p] for p in policies}
            why.append("RFC 7489 §6.6.4 (pct=0: the next lower policy)")
        elif rec["pct"] == 50:
            policies |= {lower[p] for p in policies}
            why.append("RFC 7489 §6.6.4 (pct=50: either policy)")
        return {"allowed": allowed, "policy": policies, "why": why}


def generate(seed, count, keys):
    g = Generator(seed, keys)
    cases = [g.case(n) for n in range(count)]
    return cases, g.zone
