"""PROXY protocol v1/v2 listeners and XCLIENT, over real sockets. The balancer is played by the
test on 127.0.0.1 (trusted); 127.0.0.2 plays an untrusted host (Linux routes all of 127/8 to
loopback, so a client socket can bind there)."""
import signal
import socket
import struct
import time
import unittest
import urllib.request

from proxy_client import Client, proxied, v1_header, v2_header, v2_local, v2_raw
from sluice_harness import DEFAULT_RULES, Sluice, free_port, read_file

def v2(cmd=0x21, fam=0x11, body=None, length=None):
    """v2 header; the default body is TCP4 192.0.2.10:56324 -> 198.51.100.1:25."""
    if body is None:
        body = (socket.inet_aton("192.0.2.10") + socket.inet_aton("198.51.100.1") +
                struct.pack("!HH", 56324, 25))
    return v2_raw(cmd, fam, body, length)


def v2_tcp6(tlv=b""):
    return v2_header("2001:db8::7", "2001:db8::1", 12345, 25, tlv)


class ProxyCase(unittest.TestCase):
    """One sluice with a plain listener (self.sluice.port, XCLIENT for 127.0.0.1) and a PROXY
    protocol listener (self.proxy_port) trusting 127.0.0.1 only."""

    def setUp(self):
        self.proxy_port = free_port()
        port = free_port()
        listen = ('{ "127.0.0.1:%d", { address = "127.0.0.1:%d", proxy_protocol = true, '
                  'trusted = { "127.0.0.1/32", "::1" } } }' % (port, self.proxy_port))
        self.sluice = Sluice(listen=listen, tls=False, server_extra=(
            'xclient = { "127.0.0.1/32" }, command_timeout = 3, max_connections_per_ip = 2,'))
        self.sluice.port = port
        self.sluice.start()
        self.clients = []

    def tearDown(self):
        for c in self.clients:
            c.close()
        self.sluice.stop()

    def connect(self, source="127.0.0.1", port=None):
        c = Client(port or self.proxy_port, source)
        self.clients.append(c)
        return c

    def deliver(self, c, ehlo=True):
        """Sends one message on a session past the banner; returns the stored file's bytes."""
        before = set(self.sluice.all_stored())
        if ehlo:
            c.expect(250, "EHLO client.example.net\r\n")
        c.expect(250, "MAIL FROM:<a@example.net>\r\n")
        c.expect(250, "RCPT TO:<user@example.test>\r\n")
        c.expect(354, "DATA\r\n")
        c.expect(250, "Subject: t\r\n\r\nbody\r\n.\r\n")
        c.expect(221, "QUIT\r\n")
        new = sorted(set(self.sluice.all_stored()) - before)
        self.assertEqual(len(new), 1)
        return read_file(new[0])

    def assert_refused_unheard(self, c, reason):
        """The server closed the connection without sending a byte, and logged why."""
        self.assertTrue(c.closed(timeout=10))
        self.assertEqual(c.buf, b"")
        self.sluice.wait_log(r"without banner: %s \(\d+ PROXY refusals\)" % reason)


class ProxyHeaders(ProxyCase):
    def test_v1_from_trusted_source_carries_the_client(self):
        c = self.connect()
        c.send("PROXY TCP4 192.0.2.10 198.51.100.1 56324 25\r\n")
        c.expect(220)
        data = self.deliver(c)
        self.assertIn(b"Received: from client.example.net (unknown [192.0.2.10])\r\n", data)
        self.sluice.wait_log(r"PROXY v1 from 127\.0\.0\.1 .*client 192\.0\.2\.10:56324")
        self.sluice.wait_log(r"client=192\.0\.2\.10 .*via=127\.0\.0\.1")

    def test_v2_tcp4_with_pipelined_ehlo_in_the_same_packet(self):
        c = self.connect()
        c.send(v2() + b"EHLO client.example.net\r\n")
        c.expect(220)
        self.assertIn("PIPELINING", c.expect(250))
        data = self.deliver(c, ehlo=False)
        self.assertIn(b"(unknown [192.0.2.10])", data)

    def test_v1_and_v2_ipv6_addresses(self):
        c = self.connect()
        c.send("PROXY TCP6 2001:DB8:0::9 2001:db8::1 4000 25\r\n")
        c.expect(220)
        self.assertIn(b"[IPv6:2001:db8::9]", self.deliver(c))
        c = self.connect()
        c.send(v2_tcp6(tlv=b"\x04\x00\x02ab"))  # a NOOP TLV, skipped
        c.expect(220)
        self.assertIn(b"[IPv6:2001:db8::7]", self.deliver(c))
        self.sluice.wait_log(r"client 2001:db8::7:12345")

    def test_local_and_unknown_use_the_real_peer(self):
        c = self.connect()
        c.send(v2_local())
        c.expect(220)
        self.assertIn(b"(unknown [127.0.0.1])", self.deliver(c))
        c = self.connect()
        c.send("PROXY UNKNOWN\r\n")
        c.expect(220)
        self.assertIn(b"(unknown [127.0.0.1])", self.deliver(c))
        self.sluice.wait_log(r"LOCAL: the peer itself")

    def test_header_split_across_packets(self):
        for header in (b"PROXY TCP4 192.0.2.33 198.51.100.1 1000 25\r\n", v2_tcp6()):
            c = self.connect()
            for i in range(len(header)):
                c.send(header[i:i + 1])
                time.sleep(0.005)
            c.expect(220)
            data = self.deliver(c)
            self.assertTrue(b"[192.0.2.33]" in data or b"[IPv6:2001:db8::7]" in data)

    def test_untrusted_source_is_closed_without_banner(self):
        c = self.connect(source="127.0.0.2")
        c.send("PROXY TCP4 192.0.2.10 198.51.100.1 56324 25\r\nEHLO x\r\n")
        self.assertTrue(c.closed(timeout=10))
        self.assertEqual(c.buf, b"")
        self.sluice.wait_log(r"closed 127\.0\.0\.2 on 127\.0\.0\.1:\d+ without banner: not a "
                             r"trusted PROXY protocol source \(1 PROXY refusals\)")
        c = self.connect(source="127.0.0.2")
        c.send(v2())
        self.assertTrue(c.closed(timeout=10))
        self.assertEqual(c.buf, b"")
        self.sluice.wait_log(r"\(2 PROXY refusals\)")

    def test_malformed_headers_are_closed_without_banner(self):
        cases = [
            (b"EHLO client.example.net\r\n", "no PROXY protocol signature"),
            (b"\r\n\r\n\x00\r\nQUIX\n" + b"\x21\x11\x00\x0c" + b"\0" * 12,
             "bad PROXY v2 signature"),
            (v2(fam=0x11, body=b"\0" * 8), "v2 header length too short for TCP over IPv4"),
            (v2(fam=0x21, body=b"\0" * 12), "v2 header length too short for TCP over IPv6"),
            (v2(fam=0x12), "v2 header has an unsupported address family or protocol"),
            (v2(fam=0x31, body=b"\0" * 216), "v2 header has an unsupported address family"),
            (v2(cmd=0x22), "v2 header has an unknown command"),
            (v2(cmd=0x11), "v2 header has an unsupported version"),
            (v2(length=2000, body=b""), "v2 header longer than the limit"),
            (b"PROXY TCP4 " + b"1" * 120, "v1 header longer than 107 octets"),
            (b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", "v1 header has an unknown protocol family"),
            (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n", "v1 header has an invalid port"),
            (b"PROXY TCP4 1.2.3.4 ::1 1 2\r\n", "v1 header has an invalid address"),
            (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", "v1 header ends with a bare LF"),
        ]
        for n, (data, reason) in enumerate(cases, 1):
            with self.subTest(reason=reason):
                c = self.connect()
                c.send(data)
                self.assertTrue(c.closed(timeout=10))
                self.assertEqual(c.buf, b"")
                self.sluice.wait_log(r"without banner: %s[^\n]*\(%d PROXY refusals\)" %
                                     (reason, n))

    def test_truncated_header_then_close(self):
        c = self.connect()
        c.send(v2()[:20])
        c.sock.shutdown(socket.SHUT_WR)
        self.assert_refused_unheard(c, "connection closed within the PROXY protocol header")

    def test_no_header_within_the_timeout(self):
        c = self.connect()
        c.send(b"PROXY TCP4 192.0.2.1")
        self.assert_refused_unheard(c, "no PROXY protocol header within the command timeout")

    def test_per_ip_limit_applies_to_the_carried_address(self):
        header = b"PROXY TCP4 192.0.2.50 198.51.100.1 1000 25\r\n"
        first, second = self.connect(), self.connect()
        for c in (first, second):
            c.send(header)
            c.expect(220)
        # The helper other tests use to appear to come from any address.
        helper = proxied(self.proxy_port, "203.0.113.5")
        self.clients.append(helper)
        helper.expect(220)
        self.assertIn(b"[203.0.113.5]", self.deliver(helper))
        third = self.connect()
        third.send(header)
        text = third.expect(421)
        self.assertIn("too many connections from your address", text)
        # A server-initiated close names the host (RFC 5321 §3.8), and is the last word.
        self.assertTrue(text.startswith("421 4.7.0 mx.example.test "), text)
        self.assertTrue(third.closed())
        self.assertEqual(third.buf, b"")
        other = self.connect()
        other.send(b"PROXY TCP4 192.0.2.51 198.51.100.1 1000 25\r\n")
        other.expect(220)
        self.sluice.wait_log(r"refused 192\.0\.2\.50 \(via 127\.0\.0\.1\): too many connections")


    def test_reload_updates_the_trusted_list(self):
        with open(self.sluice.config_path) as f:
            text = f.read()
        self.sluice.write_config(text.replace('"127.0.0.1/32", "::1"', '"127.0.0.2/32"'))
        self.sluice.signal(signal.SIGHUP)
        self.sluice.wait_log(r"config reloaded")
        c = self.connect()
        c.send("PROXY TCP4 192.0.2.10 198.51.100.1 56324 25\r\n")
        self.assertTrue(c.closed(timeout=10))
        self.assertEqual(c.buf, b"")
        c = self.connect(source="127.0.0.2")
        c.send("PROXY TCP4 192.0.2.10 198.51.100.1 56324 25\r\n")
        c.expect(220)
        # A reload that drops PROXY from the entry keeps the bound listener as it was.
        self.sluice.write_config(text.replace(
            'proxy_protocol = true, trusted = { "127.0.0.1/32", "::1" }', ""))
        self.sluice.signal(signal.SIGHUP)
        self.sluice.wait_log(r"proxy_protocol of 127\.0\.0\.1:%d changed; takes effect on restart"
                             % self.proxy_port)
        c = self.connect(source="127.0.0.2")
        c.send("PROXY TCP4 192.0.2.11 198.51.100.1 56324 25\r\n")
        c.expect(220)
        self.assertIn(b"[192.0.2.11]", self.deliver(c))


class Xclient(ProxyCase):
    def test_xclient_from_trusted_client_restarts_the_session(self):
        c = self.connect(port=self.sluice.port)
        c.expect(220)
        ehlo = c.expect(250, "EHLO proxy.example.net\r\n")
        self.assertIn("250-XCLIENT ADDR NAME PORT PROTO HELO", ehlo)
        c.expect(250, "MAIL FROM:<a@example.net>\r\n")
        c.expect(503, "XCLIENT ADDR=192.0.2.1\r\n")
        c.expect(250, "RSET\r\n")
        c.expect(501, "XCLIENT FOO=bar\r\n")
        c.expect(501, "XCLIENT ADDR=not-an-address\r\n")
        banner = c.expect(220, "XCLIENT ADDR=192.0.2.99 PORT=4242 NAME=client.example.org "
                               "HELO=orig+2Dhelo.example.org PROTO=ESMTP\r\n")
        self.assertIn("ESMTP sluice", banner)
        # State reset: no transaction, and the HELO from XCLIENT stands until a new EHLO.
        c.expect(250, "MAIL FROM:<a@example.net>\r\n")
        c.expect(250, "RCPT TO:<user@example.test>\r\n")
        c.expect(354, "DATA\r\n")
        c.expect(250, "Subject: x\r\n\r\nbody\r\n.\r\n")
        data = read_file(self.sluice.all_stored()[0])
        self.assertIn(b"Received: from orig-helo.example.org (client.example.org [192.0.2.99])"
                      b"\r\n\tby mx.example.test (sluice) with ESMTP\r\n", data)
        self.sluice.wait_log(r"XCLIENT from 127\.0\.0\.1: client is now 192\.0\.2\.99:4242")
        # Still authorized after the restart; IPv6 and [UNAVAILABLE] values.
        c.expect(220, "XCLIENT ADDR=IPV6:2001:db8::5 NAME=[UNAVAILABLE]\r\n")
        data = self.deliver(c)
        self.assertIn(b"Received: from client.example.net (unknown [IPv6:2001:db8::5])", data)

    def test_xclient_from_untrusted_client_is_refused(self):
        c = self.connect(source="127.0.0.2", port=self.sluice.port)
        c.expect(220)
        self.assertNotIn("XCLIENT", c.expect(250, "EHLO client.example.net\r\n"))
        self.assertIn("5.7.0", c.expect(550, "XCLIENT ADDR=192.0.2.1\r\n"))
        data = self.deliver(c)
        self.assertIn(b"(unknown [127.0.0.2])", data)


class Admission(unittest.TestCase):
    """Receipt filters and per-IP limits judge the final client address, the one a PROXY header
    carried or the TCP peer, and refuse and count alike on both kinds of listener."""

    def setUp(self):
        self.proxy_port, port, self.mport = free_port(), free_port(), free_port()
        listen = ('{ "127.0.0.1:%d", { address = "127.0.0.1:%d", proxy_protocol = true, '
                  'trusted = { "127.0.0.1/32" } } }' % (port, self.proxy_port))
        self.sluice = Sluice(
            listen=listen, tls=False,
            rules='receipt_filter { name = "bad", policy = "block", '
                  'cidr = { "192.0.2.66/32", "127.0.0.9/32" } }\n' + DEFAULT_RULES,
            server_extra='max_connections_per_ip = 1, metrics = "127.0.0.1:%d",' % self.mport)
        self.sluice.port = port
        self.sluice.start()
        self.clients = []

    def tearDown(self):
        for c in self.clients:
            c.close()
        self.sluice.stop()

    def client(self, source, port):
        c = Client(port, source)
        self.clients.append(c)
        return c

    def counters(self):
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.mport) as r:
            text = r.read().decode()
        names = ("sluice_smtp_connections_total", "sluice_smtp_connections_refused_total",
                 'sluice_smtp_recipients_rejected_total{reason="receipt_filter"}')
        values = dict(line.rsplit(" ", 1) for line in text.splitlines()
                      if not line.startswith("#"))
        return [int(values[n]) for n in names]

    def refused(self, c, want):
        code, text = c.reply()
        self.assertEqual(text, want)
        self.assertTrue(c.closed())
        self.assertEqual(c.buf, b"")

    def test_filter_and_per_ip_limit_on_both_listeners(self):
        busy = ("421 4.7.0 mx.example.test Error: too many connections from your address, "
                "try again later")
        self.assertEqual(self.counters(), [0, 0, 0])
        self.refused(self.client("127.0.0.9", self.sluice.port),
                     "554 5.7.1 Access denied by policy")
        self.assertEqual(self.counters(), [1, 1, 1])
        c = self.client("127.0.0.1", self.proxy_port)
        c.send(v1_header("192.0.2.66"))
        self.refused(c, "554 5.7.1 Access denied by policy")
        self.assertEqual(self.counters(), [2, 2, 2])
        self.sluice.wait_log(r"client=192\.0\.2\.66 via=127\.0\.0\.1 receipt_filter=bad")
        first = self.client("127.0.0.5", self.sluice.port)
        first.expect(220)
        self.refused(self.client("127.0.0.5", self.sluice.port), busy)
        self.assertEqual(self.counters(), [4, 3, 2])
        header = v1_header("192.0.2.70")
        first = self.client("127.0.0.1", self.proxy_port)
        first.send(header)
        first.expect(220)
        second = self.client("127.0.0.1", self.proxy_port)
        second.send(header)
        self.refused(second, busy)
        self.assertEqual(self.counters(), [6, 4, 2])


class ProxyConfig(unittest.TestCase):
    def check(self, listen, extra=""):
        s = Sluice(listen=listen, tls=False, server_extra=extra)
        r = s.run_cli("check", "-c", s.config_path)
        return r.returncode, r.stdout + r.stderr

    def test_config_errors_carry_file_and_line(self):
        bad = [
            ('{ { address = "127.0.0.1:2525", proxy_protocol = true } }',
             "proxy_protocol = true needs a non-empty 'trusted' list"),
            ('{ { address = "127.0.0.1:2525", trusted = { "127.0.0.1/32" } } }',
             "'trusted' applies only with proxy_protocol = true"),
            ('{ { address = "127.0.0.1:2525", proxy_protocol = true, trusted = { "10.0.0.1/8" } '
             '} }', "'10.0.0.1/8' in trusted is not a CIDR block: address has bits set"),
            ('{ { address = "127.0.0.1:2525", proxy_protocol = "yes", trusted = "::1" } }',
             "proxy_protocol"),
        ]
        for listen, msg in bad:
            with self.subTest(msg=msg):
                rc, out = self.check(listen)
                self.assertNotEqual(rc, 0)
                self.assertRegex(out, r"sluice\.lua:2: ")
                self.assertIn(msg, out)
        rc, out = self.check('"127.0.0.1:2525"', 'xclient = { "300.0.0.0/8" },')
        self.assertNotEqual(rc, 0)
        self.assertIn("'300.0.0.0/8' in xclient is not a CIDR block", out)

    def test_valid_config_is_described(self):
        rc, out = self.check('{ { address = "127.0.0.1:2525", proxy_protocol = true, '
                             'trusted = { "127.0.0.1/32", "2001:db8::/32" } } }',
                             'xclient = "127.0.0.1",')
        self.assertEqual(rc, 0, out)
        self.assertIn("PROXY protocol from 2 trusted blocks", out)


if __name__ == "__main__":
    unittest.main()
