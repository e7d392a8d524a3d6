"""examples/haproxy/haproxy.cfg for real: Debian's HAProxy on loopback in front of two sluice
nodes with PROXY protocol v2 listeners. The client connects from 127.0.0.2 while HAProxy
reaches the nodes from 127.0.0.1, so the address in the stored Received: header can only have
come from the PROXY header."""
import os
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

from auth_fixtures import Keys, start_dns
from sluice_harness import DEFAULT_RULES, SOURCE_DIR, Sluice, free_port, read_file

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


def listening(port):
    """True when some socket listens on 127.0.0.1:port (read from /proc, so that probing
    does not itself open a connection that HAProxy would forward)."""
    want = ":%04X" % port
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[1].endswith(want) and fields[3] == "0A":
                return True
    return False


@unittest.skipUnless(os.path.exists(HAPROXY), "haproxy is not installed (make test-deps)")
class HaproxyInFront(unittest.TestCase):
    node_rules = DEFAULT_RULES
    node_extra = ""
    mail_from = "a@example.net"

    def setUp(self):
        self.nodes = []
        for _ in range(2):
            port = free_port()
            node = Sluice(tls=False, listen='{ { address = "127.0.0.1:%d", proxy_protocol = true,'
                                            ' trusted = { "127.0.0.1/32" } } }' % port,
                          rules=self.node_rules, server_extra=self.node_extra)
            node.port = port
            self.nodes.append(node.start())
        self.front = free_port()
        with open(os.path.join(SOURCE_DIR, "examples", "haproxy", "haproxy.cfg")) as f:
            cfg = f.read()
        cfg = (cfg.replace("@FRONTEND@", "127.0.0.1:%d" % self.front)
               .replace("@NODE1@", "127.0.0.1:%d" % self.nodes[0].port)
               .replace("@NODE2@", "127.0.0.1:%d" % self.nodes[1].port))
        self.dir = tempfile.mkdtemp(prefix="sluice-haproxy-")
        path = os.path.join(self.dir, "haproxy.cfg")
        with open(path, "w") as f:
            f.write(cfg)
        self.log = open(os.path.join(self.dir, "haproxy.log"), "wb")
        self.haproxy = subprocess.Popen([HAPROXY, "-db", "-f", path], stdout=self.log,
                                        stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        while not listening(self.front):
            if self.haproxy.poll() is not None or time.time() > deadline:
                self.fail("haproxy did not start:\n" + self.haproxy_log())
            time.sleep(0.05)

    def tearDown(self):
        self.haproxy.terminate()
        self.haproxy.wait(timeout=20)
        self.log.close()
        for node in self.nodes:
            node.stop()

    def haproxy_log(self):
        with open(os.path.join(self.dir, "haproxy.log"), "rb") as f:
            return f.read().decode("utf-8", "replace")

    def send_one(self, n):
        sock = socket.create_connection(("127.0.0.1", self.front), timeout=15,
                                        source_address=("127.0.0.2", 0))
        f = sock.makefile("rb")

        def expect(code, line=None):
            if line is not None:
                sock.sendall(line.encode())
            while True:
                reply = f.readline().decode()
                self.assertTrue(reply.startswith(str(code)), "expected %d, got %r (haproxy: %s)"
                                % (code, reply, self.haproxy_log()))
                if reply[3:4] != "-":
                    return reply

        expect(220)
        expect(250, "EHLO client.example.net\r\n")
        expect(250, "MAIL FROM:<%s>\r\n" % self.mail_from)
        expect(250, "RCPT TO:<user@example.test>\r\n")
        expect(354, "DATA\r\n")
        expect(250, "Subject: via haproxy %d\r\n\r\nbody\r\n.\r\n" % n)
        expect(221, "QUIT\r\n")
        f.close()
        sock.close()

    def test_mail_through_haproxy_keeps_the_client_address(self):
        for n in range(2):
            self.send_one(n)
        stored = [node.all_stored() for node in self.nodes]
        # Round robin: one message on each node.
        self.assertEqual([len(s) for s in stored], [1, 1], stored)
        for node, files in zip(self.nodes, stored):
            data = read_file(files[0])
            self.assertIn(b"Received: from client.example.net (unknown [127.0.0.2])", data)
            node.wait_log(r"PROXY v2 from 127\.0\.0\.1 on [0-9.:]+: client 127\.0\.0\.2:\d+")
            node.wait_log(r"client=127\.0\.0\.2 .*via=127\.0\.0\.1")



@unittest.skipUnless(os.path.exists(HAPROXY), "haproxy is not installed (make test-deps)")
class SpfBehindHaproxy(HaproxyInFront):
    """example.com's SPF record allows 127.0.0.1 only. HAProxy reaches the nodes from
    127.0.0.1, the client is 127.0.0.2: SPF must FAIL, as it does for the same client connecting
    directly, which shows the verdict is about the carried address."""
    mail_from = "bounce@example.com"

    @classmethod
    def setUpClass(cls):
        cls.keys = Keys()
        cls.dns = start_dns(cls.keys)
        cls.node_rules = 'dns { servers = { "127.0.0.1:%d" }, timeout_ms = 2000 }\n' % (
            cls.dns.port) + DEFAULT_RULES
        cls.node_extra = "auth_checks = true,"

    @classmethod
    def tearDownClass(cls):
        cls.dns.stop()

    def spf_header(self, data):
        return data.split(b"X-Sluice-SPF-Verdict: ")[1].split(b"\r\n")[0]

    def test_mail_through_haproxy_keeps_the_client_address(self):
        self.send_one(0)
        files = [f for node in self.nodes for f in node.all_stored()]
        self.assertEqual(len(files), 1)
        self.assertEqual(self.spf_header(read_file(files[0])), b"FAIL")

    def test_same_verdict_as_a_direct_connection(self):
        self.send_one(0)
        via = [f for node in self.nodes for f in node.all_stored()]
        direct = Sluice(tls=False, rules=self.node_rules, server_extra=self.node_extra).start()
        self.addCleanup(direct.stop)
        sock = socket.create_connection(("127.0.0.1", direct.port), timeout=15,
                                        source_address=("127.0.0.2", 0))
        f = sock.makefile("rb")
        for line in (None, "EHLO client.example.net\r\n", "MAIL FROM:<%s>\r\n" % self.mail_from,
                     "RCPT TO:<user@example.test>\r\n", "DATA\r\n",
                     "Subject: direct\r\n\r\nbody\r\n.\r\n", "QUIT\r\n"):
            if line:
                sock.sendall(line.encode())
            while True:
                reply = f.readline().decode()
                if reply[3:4] != "-":
                    break
            self.assertIn(reply[0], "23", reply)
        f.close()
        sock.close()
        self.assertEqual(self.spf_header(read_file(direct.all_stored()[0])),
                         self.spf_header(read_file(via[0])))


if __name__ == "__main__":
    unittest.main()
