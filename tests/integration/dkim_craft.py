"""DKIM signatures made tag by tag for the conformance tests (the libopendkim-based dkim-sign
tool cannot make the signatures a verifier must refuse: rsa-sha1 is fine there, but not an h=
without From, an i= outside d=, an expired x= or a broken tag list). relaxed/relaxed
canonicalization (RFC 6376 §3.4.2, §3.4.4) written out here, signatures by the openssl command.

    key = RsaKey(directory, bits=1024)          # or Ed25519Key(directory)
    signed = craft(message_bytes, key, "example.com", "sel", h="from:to:subject")
"""
import base64
import hashlib
import os
import re
import subprocess


class RsaKey:
    def __init__(self, directory, name="rsa", bits=1024):
        self.path = os.path.join(directory, "%s-%d.pem" % (name, bits))
        subprocess.run(["openssl", "genrsa", "-out", self.path, str(bits)], check=True,
                       capture_output=True)
        der = subprocess.run(["openssl", "rsa", "-in", self.path, "-pubout", "-outform", "DER"],
                             check=True, capture_output=True).stdout
        self.public = base64.b64encode(der).decode()

    def record(self, extra="k=rsa; "):
        return "v=DKIM1; %sp=%s" % (extra, self.public)

    def sign(self, data, alg):
        digest = "-sha1" if alg == "rsa-sha1" else "-sha256"
        return subprocess.run(["openssl", "dgst", digest, "-sign", self.path], input=data,
                              check=True, capture_output=True).stdout


class Ed25519Key:
    def __init__(self, directory, name="ed"):
        self.path = os.path.join(directory, name + ".pem")
        subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", self.path],
                       check=True, capture_output=True)
        der = subprocess.run(["openssl", "pkey", "-in", self.path, "-pubout", "-outform", "DER"],
                             check=True, capture_output=True).stdout
        self.public = base64.b64encode(der[-32:]).decode()

    def record(self, extra="k=ed25519; "):
        return "v=DKIM1; %sp=%s" % (extra, self.public)

    def sign(self, data, alg):
        # RFC 8463: Ed25519 over the SHA-256 hash of the canonicalized data
        hashed = os.path.join(os.path.dirname(self.path), "to-sign.bin")
        with open(hashed, "wb") as f:
            f.write(hashlib.sha256(data).digest())
        return subprocess.run(["openssl", "pkeyutl", "-sign", "-rawin", "-inkey", self.path,
                               "-in", hashed], check=True, capture_output=True).stdout


def relaxed_body(body):
    body = re.sub(rb"[ \t]+\r\n", b"\r\n", body)
    body = re.sub(rb"[ \t]+", b" ", body)
    while body.endswith(b"\r\n"):
        body = body[:-2]
    return body + b"\r\n" if body else b""


def relaxed_header(name, value):
    value = re.sub(rb"\r\n", b"", value)
    value = re.sub(rb"[ \t]+", b" ", value).strip()
    return name.strip().lower() + b":" + value


def fields(head):
    """[(name, raw value)] of a header section (CRLF lines, folding kept in the value)."""
    out = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and out:
            out[-1][1] += b"\r\n" + line
        else:
            n, v = line.split(b":", 1)
            out.append([n, v])
    return out


def craft(msg, key, d, s, alg=None, h="from:to:subject:date", extra="", tags=None):
    """msg with a DKIM-Signature on top. alg defaults to the key's; extra is added to the tag
    list before b= (e.g. "i=@x.example; x=123; "); tags replaces the whole tag list before b=
    (for malformed signatures)."""
    alg = alg or ("ed25519-sha256" if isinstance(key, Ed25519Key) else "rsa-sha256")
    head, body = msg.split(b"\r\n\r\n", 1)
    bh_hash = hashlib.sha1 if alg == "rsa-sha1" else hashlib.sha256
    bh = base64.b64encode(bh_hash(relaxed_body(body)).digest()).decode()
    if tags is None:
        tags = "v=1; a=%s; c=relaxed/relaxed; d=%s; s=%s; h=%s; bh=%s; %s" % (
            alg, d, s, h, bh, extra)
    tags += "b="
    available = fields(head)
    data = b""
    for name in [n.strip().encode() for n in h.split(":") if n.strip()]:
        # the last unused instance of each named field, bottom up (RFC 6376 §5.4.2)
        for i in range(len(available) - 1, -1, -1):
            if available[i] and available[i][0].strip().lower() == name.lower():
                data += relaxed_header(*available[i]) + b"\r\n"
                available[i] = None
                break
    data += relaxed_header(b"DKIM-Signature", b" " + tags.encode())
    sig = base64.b64encode(key.sign(data, alg)).decode()
    return b"DKIM-Signature: " + tags.encode() + sig.encode() + b"\r\n" + msg
