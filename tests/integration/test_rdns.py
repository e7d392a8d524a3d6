"""The client's forward-confirmed reverse DNS name in Received:, looked up through the DNS
layer against a real nsd, for clients whose address comes from a PROXY header."""
import unittest

from dns_harness import DnsServer
from proxy_client import proxied
from sluice_harness import Sluice, free_port, read_file

# Public-looking addresses: libunbound answers the reverse zones of the documentation and
# private ranges (192.0.2.0/24, 10/8, ...) itself, whatever server it forwards to.
ZONES = {
    "example.com": [("host", "A", "93.184.216.80"), ("fake", "A", "192.0.2.99")],
    "216.184.93.in-addr.arpa": [("80", "PTR", "host.example.com."),
                             ("81", "PTR", "fake.example.com.")],
}


class ReverseDns(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dns = DnsServer(ZONES).start()

    @classmethod
    def tearDownClass(cls):
        cls.dns.stop()

    def setUp(self):
        port = free_port()
        self.s = Sluice(tls=False, listen='{ { address = "127.0.0.1:%d", proxy_protocol = true, '
                                          'trusted = { "127.0.0.1/32" } } }' % port,
                        rules='dns { servers = { "127.0.0.1:%d" }, timeout_ms = 2000 }\n'
                              % self.dns.port + __import__("sluice_harness").DEFAULT_RULES,
                        server_extra="auth_checks = true,")
        self.s.port = port
        self.s.start()
        self.addCleanup(self.s.stop)

    def received(self, client_ip):
        c = proxied(self.s.port, client_ip)
        c.expect(220)
        c.expect(250, "EHLO client.example.net\r\n")
        c.expect(250, "MAIL FROM:<a@example.net>\r\n")
        c.expect(250, "RCPT TO:<user@example.test>\r\n")
        c.expect(354, "DATA\r\n")
        c.expect(250, "Subject: rdns\r\n\r\nx\r\n.\r\n")
        c.close()
        data = read_file(self.s.maildir("example.test", "user")[-1])
        return data.split(b"\r\n")[1]

    def test_confirmed_name_is_shown(self):
        self.assertEqual(self.received("93.184.216.80"),
                         b"Received: from client.example.net (host.example.com [93.184.216.80])")

    def test_unconfirmed_or_missing_name_is_unknown(self):
        self.assertEqual(self.received("93.184.216.81"),
                         b"Received: from client.example.net (unknown [93.184.216.81])")
        self.assertEqual(self.received("93.184.216.82"),
                         b"Received: from client.example.net (unknown [93.184.216.82])")


if __name__ == "__main__":
    unittest.main()
