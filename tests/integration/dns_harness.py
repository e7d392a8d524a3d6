"""A real authoritative DNS server (Debian's nsd) for tests: writes nsd.conf and zone files into
a temporary directory, runs `nsd -d` on a free loopback port, and stops it.

    dns = DnsServer({"example.com": [("@", "TXT", txt("v=spf1 -all")), ("mx", "A", "1.2.3.4")]},
                    broken=["servfail.example.net"]).start()
    ... dns.port ...
    dns.stop()

Record names are relative to the zone unless they end with a dot. A zone listed in `broken`
is configured with a zone file nsd cannot load, so nsd answers SERVFAIL for it. The zone "."
(the root) serves any names at all, written absolute: `dns_name()` escapes odd characters
(spaces, '%', non-ASCII) for the zone file, `txt_strings()` gives a TXT of exactly the
character-strings given (also none at all).
"""
import os
import shutil
import socket
import subprocess
import tempfile
import time

NSD = shutil.which("nsd") or "/usr/sbin/nsd"


def free_port():
    """A port free for both UDP and TCP on 127.0.0.1."""
    for _ in range(50):
        with socket.socket() as t:
            t.bind(("127.0.0.1", 0))
            port = t.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                try:
                    u.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port")


def txt(s):
    """A TXT rdata for text s, split into quoted character-strings of at most 255 bytes."""
    if isinstance(s, str):
        s = s.encode("latin-1")
    chunks = [s[i:i + 255] for i in range(0, len(s), 255)] or [b""]
    out = []
    for c in chunks:
        esc = "".join(chr(b) if 0x20 <= b < 0x7f and b not in (0x22, 0x5c) else "\\%03d" % b
                      for b in c)
        out.append('"%s"' % esc)
    return " ".join(out)


def txt_strings(strings):
    """A TXT rdata of exactly these character-strings (each at most 255 bytes); an empty list
    gives a TXT record with no strings at all (RFC 3597 generic form)."""
    if not strings:
        return "\\# 0"
    return " ".join(txt(s) for s in strings)


def dns_name(name):
    """An absolute owner or target name for a zone file, every byte other than letters, digits,
    '-', '_' and the dots between labels written as \\DDD."""
    if isinstance(name, str):
        name = name.encode("latin-1")
    name = name.rstrip(b".")
    out = "".join(chr(b) if chr(b).isalnum() and b < 0x80 or b in b"-_." else "\\%03d" % b
                  for b in name)
    return out + "."


class DnsServer:
    def __init__(self, zones, broken=()):
        self.zones = zones
        self.broken = list(broken)
        self.dir = tempfile.mkdtemp(prefix="sluice-dns-")
        self.port = free_port()
        self.proc = None

    def _zone_text(self, origin, records):
        if origin == ".":
            lines = ["$ORIGIN .", "$TTL 60",
                     "@ IN SOA ns.root.test. hostmaster.root.test. 1 3600 600 86400 60",
                     "@ IN NS ns.root.test.", "ns.root.test. IN A 127.0.0.1"]
        else:
            lines = ["$ORIGIN %s." % origin, "$TTL 60",
                     "@ IN SOA ns.%s. hostmaster.%s. 1 3600 600 86400 60" % (origin, origin),
                     "@ IN NS ns.%s." % origin, "ns IN A 127.0.0.1"]
        for name, rtype, rdata in records:
            lines.append("%s IN %s %s" % (name, rtype, rdata))
        return "\n".join(lines) + "\n"

    def start(self):
        conf = ["server:",
                "  ip-address: 127.0.0.1@%d" % self.port,
                "  port: %d" % self.port,
                "  do-ip6: no",
                "  server-count: 1",
                "  username: \"\"",
                "  chroot: \"\"",
                "  zonesdir: \"%s\"" % self.dir,
                "  pidfile: \"%s/nsd.pid\"" % self.dir,
                "  xfrdfile: \"%s/xfrd.state\"" % self.dir,
                "  xfrdir: \"%s\"" % self.dir,
                "  zonelistfile: \"%s/zone.list\"" % self.dir,
                "  database: \"\"",
                "  logfile: \"%s/nsd.log\"" % self.dir,
                "  verbosity: 1",
                "remote-control:",
                "  control-enable: no"]
        for origin, records in self.zones.items():
            fname = ("root" if origin == "." else origin) + ".zone"
            with open(os.path.join(self.dir, fname), "w") as f:
                f.write(self._zone_text(origin, records))
            conf += ["zone:", "  name: %s" % origin, "  zonefile: \"%s\"" % fname]
        for origin in self.broken:
            fname = origin + ".zone"
            with open(os.path.join(self.dir, fname), "w") as f:
                f.write("this is not a zone file\n")
            conf += ["zone:", "  name: %s" % origin, "  zonefile: \"%s\"" % fname]
        self.conf_path = os.path.join(self.dir, "nsd.conf")
        with open(self.conf_path, "w") as f:
            f.write("\n".join(conf) + "\n")
        self.log = open(os.path.join(self.dir, "nsd.out"), "ab")
        self.proc = subprocess.Popen([NSD, "-d", "-c", self.conf_path], stdout=self.log,
                                     stderr=self.log)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("nsd exited at start:\n" + self.read_log())
            if self._answers():
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("nsd did not start:\n" + self.read_log())

    def _answers(self):
        """True when nsd answers a UDP query for the first zone's SOA."""
        origin = next(iter(self.zones), None) or "example.com"
        q = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
        for label in origin.split("."):
            if label:
                q += bytes([len(label)]) + label.encode()
        q += b"\x00\x00\x06\x00\x01"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.2)
            try:
                s.sendto(q, ("127.0.0.1", self.port))
                data = s.recv(4096)
                return data[:2] == b"\x12\x34"
            except OSError:
                return False

    def read_log(self):
        out = ""
        for name in ("nsd.out", "nsd.log"):
            try:
                with open(os.path.join(self.dir, name), "rb") as f:
                    out += f.read().decode("utf-8", "replace")
            except FileNotFoundError:
                pass
        return out

    def pause(self):
        """Stops nsd but keeps its files and port, so start() brings the same server back."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        if self.proc:
            self.log.close()
        self.proc = None

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.log.close()
            self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)
        self.proc = None


class Blackhole:
    """A UDP and TCP port on 127.0.0.1 that accepts and never answers: a dead DNS server."""

    def __init__(self):
        self.port = free_port()
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", self.port))
        self.tcp = socket.socket()
        self.tcp.bind(("127.0.0.1", self.port))
        self.tcp.listen(16)

    def close(self):
        self.udp.close()
        self.tcp.close()
