"""Every way a session ends without the client's QUIT (issue 21, defect 4). 221 answers QUIT and
nothing else (RFC 5321 §4.1.1.10); a server that closes on its own says 421 with its hostname
(§3.8, §4.2), or, when it refuses something and hangs up (the smuggling defence, as Postfix
does), ends with the 5xx refusal. Each case reads everything the server sent until it closed
the connection and checks it reply by reply: never a 221 unless QUIT was sent."""
import signal
import socket
import unittest

from sluice_harness import DEFAULT_RULES, RawClient, SluiceTestCase

HOST = "mx.example.test"


def until_closed(c, wire=None, timeout=30):
    """Sends wire, then reads until the server closes. Returns every reply line received
    (after what the test already read), asserting the close happened."""
    if wire is not None:
        c.send(wire)
    assert c.closed(timeout=timeout), "server did not close; got %r" % c.buf
    data, c.buf = c.buf, b""
    assert data == b"" or data.endswith(b"\r\n"), "partial last line: %r" % data
    return [line.decode("utf-8", "replace") for line in data.split(b"\r\n")[:-1]]


class Base(SluiceTestCase):
    def assert_no_221(self, lines):
        self.assertFalse([l for l in lines if l.startswith("221")], lines)

    def assert_421(self, line, enhanced):
        """A server-initiated close: 421, the enhanced code, then the server's hostname."""
        self.assertTrue(line.startswith("421 %s %s " % (enhanced, HOST)), line)

    def start_data(self, c):
        c.expect(250, "MAIL FROM:<a@example.net>\r\n")
        c.expect(250, "RCPT TO:<user@example.test>\r\n")
        c.expect(354, "DATA\r\n")


class Refusals(Base):
    """The client sent something the server will not talk past: the 5xx, then the close."""

    def test_bare_lf_in_data(self):
        c = self.session()
        self.start_data(c)
        lines = until_closed(c, b"Subject: x\r\n\r\nbare\nlf\r\n.\r\n")
        self.assertEqual(len(lines), 1, lines)
        self.assertTrue(lines[0].startswith("550 5.5.2 Error: bare <LF> received"), lines)
        self.assertEqual(self.sluice.all_stored(), [])

    def test_bare_cr_in_data(self):
        c = self.session()
        self.start_data(c)
        lines = until_closed(c, b"Subject: x\r\n\r\nbare\rcr\r\n.\r\n")
        self.assertEqual(len(lines), 1, lines)
        self.assertTrue(lines[0].startswith("550 5.5.2 Error: bare <CR> received"), lines)
        self.assertEqual(self.sluice.all_stored(), [])

    def test_bare_lf_in_data_with_pipelined_quit(self):
        """The QUIT after the refused message is never read: the session is over at the 550."""
        c = self.session()
        self.start_data(c)
        lines = until_closed(c, b"Subject: x\r\n\r\nbare\nlf\r\n.\r\nQUIT\r\n")
        self.assertEqual(len(lines), 1, lines)
        self.assertTrue(lines[0].startswith("550 5.5.2"), lines)
        self.assert_no_221(lines)

    def test_bare_lf_in_command(self):
        c = self.session()
        lines = until_closed(c, b"NOOP\n")
        self.assertEqual(lines, ["550 5.5.2 Error: bare <LF> received"])

    def test_bare_cr_in_command(self):
        c = self.session()
        lines = until_closed(c, b"NOOP\rQUIT\r\n")
        self.assertEqual(lines, ["550 5.5.2 Error: bare <CR> received"])


class TooManyErrors(Base):
    server_extra = "max_errors = 2,"

    def test_unknown_commands(self):
        c = self.session()
        lines = until_closed(c, b"FROB\r\nFROB\r\nNOOP\r\n")
        self.assertEqual(len(lines), 3, lines)
        self.assertTrue(lines[0].startswith("500 5.5.2"), lines)
        self.assertTrue(lines[1].startswith("500 5.5.2"), lines)
        self.assert_421(lines[2], "4.7.0")

    def test_over_long_command_lines(self):
        c = self.session()
        long_line = b"NOOP " + b"x" * 600 + b"\r\n"
        lines = until_closed(c, long_line * 3)
        self.assertEqual(len(lines), 3, lines)
        self.assertTrue(lines[0].startswith("500 5.5.2 Error: line too long"), lines)
        self.assertTrue(lines[1].startswith("500 5.5.2 Error: line too long"), lines)
        self.assert_421(lines[2], "4.7.0")

    def test_refused_message_reaches_the_limit(self):
        """A message refused for an over-long line is an error like any other; the session goes
        on until the limit, then 421."""
        c = self.session()
        self.assertIn("500 5.5.2", c.expect(500, "FROB\r\n"))
        self.start_data(c)
        lines = until_closed(c, b"Subject: x\r\n\r\n" + b"y" * 999 + b"\r\n.\r\n")
        self.assertEqual(len(lines), 2, lines)
        self.assertTrue(lines[0].startswith("550 5.5.2"), lines)
        self.assert_421(lines[1], "4.7.0")
        self.assertEqual(self.sluice.all_stored(), [])


class CommandTimeout(Base):
    server_extra = "command_timeout = 2,"

    def test_idle_before_ehlo(self):
        c = self.sluice.raw(timeout=30)
        c.expect(220)
        lines = until_closed(c)
        self.assertEqual(len(lines), 1, lines)
        self.assert_421(lines[0], "4.4.2")

    def test_idle_mid_transaction(self):
        c = self.session()
        c.expect(250, "MAIL FROM:<a@example.net>\r\n")
        lines = until_closed(c)
        self.assertEqual(len(lines), 1, lines)
        self.assert_421(lines[0], "4.4.2")
        self.assertEqual(self.sluice.all_stored(), [])


class DataTimeout(Base):
    server_extra = "data_timeout = 2,"

    def test_idle_in_data(self):
        c = self.session()
        self.start_data(c)
        c.send(b"Subject: stalled\r\n\r\nhalf")
        lines = until_closed(c)
        self.assertEqual(len(lines), 1, lines)
        self.assert_421(lines[0], "4.4.2")
        self.assertEqual(self.sluice.all_stored(), [])


class Shutdown(Base):
    def test_idle_session(self):
        c = self.session()
        self.sluice.signal(signal.SIGTERM)
        lines = until_closed(c)
        self.assertEqual(len(lines), 1, lines)
        self.assert_421(lines[0], "4.3.2")

    def test_after_the_transaction(self):
        c = self.session()
        self.start_data(c)
        keep = self.session()  # so that the server is still running when c finishes
        keep.expect(250, "MAIL FROM:<a@example.net>\r\n")
        start = len(self.sluice.read_log())
        self.sluice.signal(signal.SIGTERM)
        self.sluice.wait_log(r"finishing \d+ sessions", start=start)
        lines = until_closed(c, b"Subject: last\r\n\r\nlast\r\n.\r\n")
        self.assertEqual(len(lines), 2, lines)
        self.assertTrue(lines[0].startswith("250 2.0.0"), lines)
        self.assert_421(lines[1], "4.3.2")
        lines = until_closed(keep, b"RSET\r\n")
        self.assertEqual(len(lines), 2, lines)
        self.assertTrue(lines[0].startswith("250"), lines)
        self.assert_421(lines[1], "4.3.2")


def connect_from(port, source_ip):
    s = socket.socket()
    s.settimeout(10)
    s.bind((source_ip, 0))
    s.connect(("127.0.0.1", port))
    c = RawClient.__new__(RawClient)
    c.sock, c.buf = s, b""
    return c


class ConnectionLimits(Base):
    server_extra = "max_connections = 2, max_connections_per_ip = 1,"

    def test_per_ip_limit(self):
        a = self.sluice.raw()
        a.expect(220)
        lines = until_closed(self.sluice.raw())
        self.assertEqual(len(lines), 1, lines)
        self.assert_421(lines[0], "4.7.0")
        self.assertIn("your address", lines[0])

    def test_total_limit(self):
        a = self.sluice.raw()
        a.expect(220)
        b = connect_from(self.sluice.port, "127.0.0.2")
        self.sluice.clients.append(b)
        b.expect(220)
        c = connect_from(self.sluice.port, "127.0.0.3")
        self.sluice.clients.append(c)
        lines = until_closed(c)
        self.assertEqual(len(lines), 1, lines)
        self.assert_421(lines[0], "4.7.0")


class ReceiptFilter(Base):
    rules = DEFAULT_RULES + (
        'receipt_filter { name = "loopback-block", policy = "block", cidr = { "127.0.0.0/8" } }\n')

    def test_blocked_client(self):
        """The refusal is the banner (554, RFC 5321 §3.1), and nothing follows it."""
        lines = until_closed(self.sluice.raw())
        self.assertEqual(len(lines), 1, lines)
        self.assertTrue(lines[0].startswith("554 5.7.1"), lines)


class Quit(Base):
    def test_quit_gets_221(self):
        """The one case that is answered with 221, also after a refused message."""
        c = self.session()
        self.start_data(c)
        c.send(b"Subject: x\r\n\r\n" + b"y" * 999 + b"\r\n.\r\n")
        self.assertIn("550 5.5.2", c.expect(550))
        lines = until_closed(c, b"QUIT\r\n")
        self.assertEqual(len(lines), 1, lines)
        self.assertTrue(lines[0].startswith("221 2.0.0"), lines)


if __name__ == "__main__":
    unittest.main()
