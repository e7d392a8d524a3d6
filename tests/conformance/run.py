"""`make conformance`: sluice's SPF, DKIM and DMARC verdicts held against rspamd and mailauth
on the same generated cases (generate.py), all three resolving through one nsd on loopback.

    python3 run.py --seed 1234 --cases 2000 [--doc ../../docs/conformance.md]

One nsd with every case's zone data, one sluice, one rspamd and one mailauth process for the
whole run. Each case is an SMTP session to sluice from its own 127.x.y.z client address (the
client socket is bound to it), and the same message, address, HELO and MAIL FROM go to rspamd's
/checkv2 and to mailauth's authenticate(). Answers are mapped onto one vocabulary and compared;
the generator's RFC evaluators say which answers are right. Exit status 1 when sluice is wrong
on a case that is not in expected_failures.EXPECTED (or an entry there matched nothing).
"""
import argparse
import base64
import concurrent.futures
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, HERE)

from dkim_craft import Ed25519Key, RsaKey  # noqa: E402
from dns_harness import DnsServer, dns_name, txt  # noqa: E402
from expected_failures import EXPECTED  # noqa: E402
from generate import SERVFAIL_ZONE, generate  # noqa: E402
from scanners import Rspamd  # noqa: E402
from sluice_harness import SOURCE_DIR, Sluice  # noqa: E402

MAILAUTH_DIR = os.environ.get("MAILAUTH_DIR") or os.path.join(SOURCE_DIR, "build-tools",
                                                              "mailauth")
CHECKS = ("spf", "dkim", "dmarc")
DOC_BEGIN = "<!-- conformance-run:begin (written by `make conformance`) -->"
DOC_END = "<!-- conformance-run:end -->"


def make_keys(directory):
    keys = {}
    for bits in (1024, 2048, 4096):
        k = RsaKey(directory, bits=bits)
        k.alg = "rsa-sha256"
        keys["rsa%d" % bits] = k
    k = Ed25519Key(directory)
    k.alg = "ed25519-sha256"
    keys["ed25519"] = k
    return keys


def zone_records(zone):
    out = []
    for name, rtype, rdata in zone.records():
        if rtype == "TXT":
            rdata = txt(rdata)
        out.append((dns_name(name), rtype, rdata))
    return out


# --- sluice ---------------------------------------------------------------------------------
def sluice_send(sl, case):
    s = socket.create_connection(("127.0.0.1", sl.port), timeout=30,
                                 source_address=(case.ip, 0))
    buf = b""

    def reply(code):
        nonlocal buf
        while True:
            while b"\r\n" not in buf:
                chunk = s.recv(65536)
                if not chunk:
                    raise ConnectionError("closed: %r" % buf)
                buf += chunk
            line, buf = buf.split(b"\r\n", 1)
            if len(line) < 4 or line[3:4] != b"-":
                if int(line[:3]) != code:
                    raise AssertionError("%s: expected %d, got %r" % (case.id, code, line))
                return
    try:
        reply(220)
        for cmd, code in (("EHLO %s" % case.helo, 250), ("MAIL FROM:<%s>" % case.mail_from, 250),
                          ("RCPT TO:<%s@example.test>" % case.id, 250), ("DATA", 354)):
            s.sendall(cmd.encode() + b"\r\n")
            reply(code)
        data = case.message.replace(b"\r\n.", b"\r\n..")
        s.sendall(data + b".\r\n")
        reply(250)
        s.sendall(b"QUIT\r\n")
    finally:
        s.close()


def strip_comments(text):
    prev = None
    while prev != text:
        prev = text
        text = re.sub(r"\((?:[^()\\]|\\.)*\)", "", text)
    return text


def sluice_answers(sl, case):
    d = os.path.join(sl.dir, "var", "mail", "example.test", case.id, "new")
    files = os.listdir(d) if os.path.isdir(d) else []
    if len(files) != 1:
        return {"spf": "missing", "dkim": "missing", "dmarc": "missing"}
    with open(os.path.join(d, files[0]), "rb") as f:
        head = f.read().split(b"\r\n\r\n", 1)[0].decode("latin-1")
    fields, cur = [], None
    for line in head.split("\r\n"):
        if line[:1] in (" ", "\t") and fields:
            fields[-1][1] += " " + line.strip()
        elif ":" in line:
            n, v = line.split(":", 1)
            fields.append([n, v.strip()])
    ar = next(v for n, v in fields if n == "Authentication-Results"
              and v.startswith("mx.example.test;"))
    body = strip_comments(ar)
    spf = re.search(r"\bspf=(\w+)", body).group(1)
    dkims = re.findall(r"\bdkim=(\w+)((?:\s+header\.[ds]=\S+)*)", body)
    dmarc = re.search(r"\bdmarc=(\w+)", body).group(1)
    pol = re.search(r"policy\.dmarc=(\w+)", body)
    return {"spf": spf, "dkim": aggregate([r for r, _ in dkims]),
            "dkim_sigs": ["%s%s" % (r, x.replace(" header.", " ")) for r, x in dkims],
            "dmarc": dmarc_word(dmarc, pol.group(1) if pol else None)}


def aggregate(results):
    results = [r for r in results if r != "none"]
    for r in ("pass", "temperror", "fail", "permerror", "neutral"):
        if r in results:
            return r
    if results:
        return results[0]
    return "none"


def dmarc_word(result, policy):
    if result == "fail" and policy:
        return "fail:%s" % policy
    return result


# --- rspamd ---------------------------------------------------------------------------------
RSPAMD_LOCAL = {
    # loopback clients are "local" to rspamd, which skips these checks for them by default
    "spf.conf": "check_local = true;\ncheck_authed = true;\n",
    "dkim.conf": "check_local = true;\ncheck_authed = true;\n",
    "dmarc.conf": "check_local = true;\ncheck_authed = true;\n",
}
RSPAMD_SPF = {"R_SPF_ALLOW": "pass", "R_SPF_FAIL": "fail", "R_SPF_SOFTFAIL": "softfail",
              "R_SPF_NEUTRAL": "neutral", "R_SPF_DNSFAIL": "temperror",
              "R_SPF_PERMFAIL": "permerror", "R_SPF_NA": "none"}
RSPAMD_DKIM = {"R_DKIM_ALLOW": "pass", "R_DKIM_REJECT": "fail", "R_DKIM_TEMPFAIL": "temperror",
               "R_DKIM_PERMFAIL": "permerror", "R_DKIM_NA": "none"}


def rspamd_answers(url, case):
    headers = {"IP": case.ip, "Helo": case.helo, "From": case.mail_from or "<>",
               "Rcpt": "%s@example.test" % case.id, "Queue-Id": case.id}
    req = urllib.request.Request(url + "/checkv2", data=case.message, headers=headers)
    with urllib.request.urlopen(req, timeout=60) as r:
        res = json.load(r)
    syms = res.get("symbols", {})
    spf = [v for k, v in RSPAMD_SPF.items() if k in syms]
    dkim = [v for k, v in RSPAMD_DKIM.items() if k in syms]
    dmarc = "none"
    for k, v in syms.items():
        opts = v.get("options") or []
        if k == "DMARC_POLICY_ALLOW" or k == "DMARC_POLICY_ALLOW_WITH_FAILURES":
            dmarc = "pass"
        elif k in ("DMARC_POLICY_REJECT", "DMARC_POLICY_QUARANTINE", "DMARC_POLICY_SOFTFAIL"):
            pol = opts[1] if len(opts) > 1 else {"DMARC_POLICY_REJECT": "reject",
                                                 "DMARC_POLICY_QUARANTINE": "quarantine"}.get(k, "none")
            if k == "DMARC_POLICY_SOFTFAIL" and pol not in ("none", "quarantine", "reject"):
                pol = "none"
            dmarc = dmarc_word("fail", pol if k != "DMARC_POLICY_SOFTFAIL" else "none")
        elif k == "DMARC_BAD_POLICY":
            dmarc = "permerror"
        elif k == "DMARC_DNSFAIL":
            dmarc = "temperror"
        elif k == "DMARC_NA":
            dmarc = "none"
    return {"spf": spf[0] if len(spf) == 1 else ("+".join(spf) or "absent"),
            "dkim": aggregate(dkim) if dkim else "absent",
            "dkim_sigs": ["%s %s" % (k, ",".join(syms[k].get("options") or []))
                          for k in RSPAMD_DKIM if k in syms],
            "dmarc": dmarc}


# --- mailauth -------------------------------------------------------------------------------
MAILAUTH_DKIM = {"pass": "pass", "fail": "fail", "neutral": "permerror", "policy": "fail",
                 "temperror": "temperror", "permerror": "permerror", "none": "none"}


def mailauth_answers(dns_port, cases):
    script = os.path.join(HERE, "mailauth_peer.js")
    proc = subprocess.Popen(["node", script, "127.0.0.1:%d" % dns_port],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            env=dict(os.environ, MAILAUTH_DIR=MAILAUTH_DIR))
    feed = "".join(json.dumps({"id": c.id, "ip": c.ip, "helo": c.helo, "sender": c.mail_from,
                               "message": base64.b64encode(c.message).decode()}) + "\n"
                   for c in cases).encode()
    out, _ = proc.communicate(feed, timeout=1800)
    answers = {}
    for line in out.decode().splitlines():
        r = json.loads(line)
        if r.get("error"):
            answers[r["id"]] = {"spf": "error", "dkim": "error", "dmarc": "error",
                                "error": r["error"][:300]}
            continue
        sigs = [s for s in r["dkim"] if not (s["result"] == "none" and not s["domain"])]
        dkim = aggregate([MAILAUTH_DKIM.get(s["result"], s["result"]) for s in sigs])
        dmarc = r.get("dmarc") or "none"
        answers[r["id"]] = {"spf": r.get("spf") or "none", "dkim": dkim,
                            "dkim_sigs": ["%s %s %s" % (s["result"], s["domain"],
                                                        s.get("comment") or "") for s in sigs],
                            "dmarc": dmarc_word(dmarc, r.get("policy"))}
    return answers


# --- expectations and judgement --------------------------------------------------------------
def allowed_answers(case, check):
    e = case.expect[check]
    if check != "dmarc":
        return set(e["allowed"])
    out = set()
    for a in e["allowed"]:
        if a == "fail":
            # without a policy the RFC leaves it (several authors): any policy word
            out |= {"fail:%s" % p for p in (e.get("policy") or
                                             ("none", "quarantine", "reject"))}
        else:
            out.add(a)
    return out


def judge(cases, answers):
    """Per check: counts and the listed disagreements."""
    report = {"cases": len(cases), "checks": {}}
    for check in CHECKS:
        counts = {"both": 0, "one": 0, "neither": 0, "sluice_right": 0, "sluice_wrong": 0,
                  "rspamd_right": 0, "mailauth_right": 0}
        differs, peers, wrong = [], [], []
        for c in cases:
            s, r, m = (answers[w][c.id][check] for w in ("sluice", "rspamd", "mailauth"))
            allowed = allowed_answers(c, check)
            agree = (s == r) + (s == m)
            counts[["neither", "one", "both"][agree]] += 1
            for who, a in (("sluice", s), ("rspamd", r), ("mailauth", m)):
                if a in allowed:
                    counts[who + "_right"] += 1
            if s not in allowed:
                counts["sluice_wrong"] += 1
            row = {"case": c.id, "sluice": s, "rspamd": r, "mailauth": m,
                   "allowed": sorted(allowed), "why": c.expect[check]["why"],
                   "tags": sorted(set(c.tags)),
                   "right": [w for w, a in (("sluice", s), ("rspamd", r), ("mailauth", m))
                             if a in allowed],
                   "detail": case_detail(c, check, answers)}
            if s not in allowed:
                wrong.append(row)
            if agree < 2:
                differs.append(row)
            if r != m:
                peers.append(row)
        report["checks"][check] = {"counts": counts, "differs": differs, "peers": peers,
                                   "wrong": wrong}
    return report


def case_detail(c, check, answers):
    d = "ip=%s helo=%s mailfrom=<%s> from=%s" % (c.ip, c.helo, c.mail_from, c.from_domain)
    if check == "dkim":
        d += "; signatures: " + " | ".join(x[0] for x in c.dkim_sigs)
        d += "; sluice: " + ", ".join(answers["sluice"][c.id].get("dkim_sigs", []))
        d += "; rspamd: " + ", ".join(answers["rspamd"][c.id].get("dkim_sigs", []))
        d += "; mailauth: " + ", ".join(answers["mailauth"][c.id].get("dkim_sigs", []))
    return d


def classify_wrong(report):
    """Splits sluice's wrong answers into expected (listed, with the reason) and unexpected;
    returns (unexpected rows, stale entries of EXPECTED)."""
    unexpected, used = [], set()
    for check, r in report["checks"].items():
        for row in r["wrong"]:
            hit = next((i for i, e in enumerate(EXPECTED)
                        if e["check"] == check and e["tag"] in row["tags"]), None)
            if hit is None:
                unexpected.append((check, row))
            else:
                used.add(hit)
                row["known"] = EXPECTED[hit]["reason"]
    stale = [e for i, e in enumerate(EXPECTED) if i not in used]
    return unexpected, stale


# --- output ---------------------------------------------------------------------------------
def format_report(seed, report, elapsed, full=True):
    out = []
    out.append("Seed %d, %d cases, %.0f s (sluice, rspamd %s, mailauth %s on one nsd)." % (
        seed, report["cases"], elapsed, report.get("rspamd_version", "?"),
        report.get("mailauth_version", "?")))
    out.append("")
    out.append("| check | sluice agrees with both peers | with one | with neither | "
               "sluice right (RFC) | rspamd right | mailauth right |")
    out.append("|---|---|---|---|---|---|---|")
    for check in CHECKS:
        c = report["checks"][check]["counts"]
        out.append("| %s | %d | %d | %d | %d | %d | %d |" % (
            check.upper(), c["both"], c["one"], c["neither"], c["sluice_right"],
            c["rspamd_right"], c["mailauth_right"]))
    for check in CHECKS:
        r = report["checks"][check]
        out.append("")
        out.append("### %s: cases where sluice differs from a peer (%d)" % (
            check.upper(), len(r["differs"])))
        out.append("")
        if r["differs"]:
            out += table(r["differs"], full)
        out.append("")
        out.append("### %s: cases where rspamd and mailauth differ from each other (%d)" % (
            check.upper(), len(r["peers"])))
        out.append("")
        if r["peers"]:
            out += table(r["peers"], full)
    return "\n".join(out)


def table(rows, full):
    """Disagreements grouped by their answers and deciding rule; one example case each."""
    groups = {}
    for row in rows:
        key = (row["sluice"], row["rspamd"], row["mailauth"], tuple(row["allowed"]),
               "; ".join(row["why"]), row.get("known"))
        groups.setdefault(key, []).append(row)
    out = ["| cases | sluice | rspamd | mailauth | RFC allows | decided by | right |",
           "|---|---|---|---|---|---|---|"]
    for key, g in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        s, r, m, allowed, why, known = key
        ids = ", ".join(x["case"] for x in g[:6]) + (" … (%d)" % len(g) if len(g) > 6 else "")
        right = ", ".join(g[0]["right"]) or "none of them"
        if known:
            right += " (known sluice defect: %s)" % known
        out.append("| %s | %s | %s | %s | %s | %s | %s |" % (
            ids, s, r, m, " / ".join(allowed), why.replace("|", "/"), right))
        if full:
            out.append("| | e.g. %s: %s | | | | | |" % (g[0]["case"],
                                                        g[0]["detail"].replace("|", "/")))
    return out


def write_doc(path, text):
    with open(path) as f:
        doc = f.read()
    block = DOC_BEGIN + "\n" + text + "\n" + DOC_END
    if DOC_BEGIN in doc:
        doc = re.sub(re.escape(DOC_BEGIN) + ".*?" + re.escape(DOC_END), lambda _: block, doc,
                     flags=re.S)
    else:
        doc = doc.rstrip("\n") + "\n\n" + block + "\n"
    with open(path, "w") as f:
        f.write(doc)


# --- the run ---------------------------------------------------------------------------------
def run(seed, count, log=print):
    t0 = time.time()
    work = tempfile.mkdtemp(prefix="sluice-conformance-")
    started = []
    try:
        keys = make_keys(work)
        cases, zone = generate(seed, count, keys)
        log("generated %d cases (%d DNS names) in %.1f s" % (len(cases), len(zone.names),
                                                             time.time() - t0))
        dns = DnsServer({".": zone_records(zone)}, broken=[SERVFAIL_ZONE]).start()
        started.append(dns)
        local = dict(RSPAMD_LOCAL)
        local["options.inc"] = ("dns { nameserver = [\"127.0.0.1:%d\"]; timeout = 2s; "
                                "retransmits = 2; }\n" % dns.port)
        rspamd = Rspamd(local_d=local)
        rspamd_box = {}
        th = threading.Thread(target=lambda: rspamd_box.update(r=rspamd.start()))
        th.start()
        started.append(rspamd)
        sl = Sluice(tls=False, server_extra="auth_checks = true, max_connections_per_ip = 200,",
                    rules="""
dns { servers = { "127.0.0.1:%d" }, timeout_ms = 3000 }
rule_set "main" {
  rule { name = "store", recipients = { "example.test" },
         actions = { store { maildir = "var/mail/{domain}/{user}" } } },
}
""" % dns.port).start()
        started.append(sl)
        answers = {"sluice": {}, "rspamd": {}, "mailauth": {}}
        ma = {}
        mt = threading.Thread(target=lambda: ma.update(mailauth_answers(dns.port, cases)))
        mt.start()
        with concurrent.futures.ThreadPoolExecutor(4) as ex:
            list(ex.map(lambda c: sluice_send(sl, c), cases))
        for c in cases:
            answers["sluice"][c.id] = sluice_answers(sl, c)
        log("sluice done at %.0f s" % (time.time() - t0))
        mt.join()
        answers["mailauth"] = ma
        log("mailauth done at %.0f s" % (time.time() - t0))
        th.join()
        if "r" not in rspamd_box:
            raise RuntimeError("rspamd did not start:\n" + open(rspamd.log_path).read()[-3000:])
        with concurrent.futures.ThreadPoolExecutor(4) as ex:
            for c, a in zip(cases, ex.map(lambda c: rspamd_answers(rspamd.url, c), cases)):
                answers["rspamd"][c.id] = a
        log("rspamd done at %.0f s" % (time.time() - t0))
        for c in cases:
            if c.id not in answers["mailauth"]:
                answers["mailauth"][c.id] = {"spf": "error", "dkim": "error", "dmarc": "error"}
        report = judge(cases, answers)
        report["rspamd_version"] = subprocess.run(
            ["rspamd", "--version"], capture_output=True, text=True).stdout.split()[-1]
        with open(os.path.join(MAILAUTH_DIR, "node_modules", "mailauth", "package.json")) as f:
            report["mailauth_version"] = json.load(f)["version"]
        report["elapsed"] = time.time() - t0
        report["answers"] = answers
        report["case_objs"] = cases
        return report
    finally:
        for s in reversed(started):
            try:
                s.stop()
            except Exception as e:  # keep stopping the others
                log("stopping %s: %s" % (type(s).__name__, e))
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int)
    ap.add_argument("--cases", type=int, default=2000)
    ap.add_argument("--doc", help="write the report into this Markdown file's generated section")
    ap.add_argument("--json", help="write every case's answers here")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "big") % 100000
    print("conformance: seed %d (repeat with `make conformance SEED=%d`)" % (seed, seed),
          flush=True)
    report = run(seed, args.cases, log=lambda s: print("  " + s, flush=True))
    unexpected, stale = classify_wrong(report)
    text = format_report(seed, report, report["elapsed"])
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"seed": seed, "answers": report["answers"],
                       "cases": {c.id: {"tags": c.tags, "ip": c.ip, "helo": c.helo,
                                        "mail_from": c.mail_from,
                                        "expect": {k: sorted(allowed_answers(c, k))
                                                   for k in CHECKS},
                                        "message": c.message.decode("latin-1")}
                                 for c in report["case_objs"]}}, f, indent=1)
    if args.doc:
        write_doc(args.doc, text)
    print("")
    for check, row in unexpected:
        print("SLUICE WRONG (%s) %s: sluice %s, RFC allows %s (%s)" % (
            check, row["case"], row["sluice"], "/".join(row["allowed"]), "; ".join(row["why"])))
    for e in stale:
        print("expected failure not seen (clear it from expected_failures.py?): %s" % e)
    return 1 if unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
