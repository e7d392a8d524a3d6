"""Limits: recipients per message, message size (announced and actual), protocol errors per
session, idle and slow-drip clients (RFC 5321 §4.5.3.2 timeouts), connections in total and per
client address. Each case checks the reply code + enhanced code and what was stored."""
import select
import socket
import subprocess
import threading
import time
import unittest

from sluice_harness import RawClient, SluiceTestCase


def drip(c, data, interval=0.5, limit=40):
    """Sends data one byte every interval seconds until the server closes the connection or
    limit bytes were sent. Returns everything the server sent meanwhile and whether it closed."""
    got = b""
    for i in range(min(limit, len(data))):
        r, _, _ = select.select([c.sock], [], [], interval)
        if r:
            try:
                chunk = c.sock.recv(65536)
            except ConnectionResetError:
                return got, True
            if not chunk:
                return got, True
            got += chunk
        try:
            c.sock.send(data[i:i + 1])
        except (BrokenPipeError, ConnectionResetError):
            return got, True
    # Limit reached: give the server one more interval to close.
    c.sock.settimeout(interval)
    try:
        while True:
            chunk = c.sock.recv(65536)
            if not chunk:
                return got, True
            got += chunk
    except (socket.timeout, ConnectionResetError):
        return got, False


class Recipients(SluiceTestCase):
    def test_101st_recipient_gets_452(self):
        c = self.session()
        c.expect(250, "MAIL FROM:<a@example.net>\r\n")
        c.send(b"".join(b"RCPT TO:<u%d@example.test>\r\n" % i for i in range(1, 101)))
        for _ in range(100):
            c.expect(250)
        self.assertIn("452 4.5.3", c.expect(452, "RCPT TO:<u101@example.test>\r\n"))
        self.assertIn("452 4.5.3", c.expect(452, "RCPT TO:<u102@example.test>\r\n"))
        c.expect(250, "RSET\r\n")
        self.assertEqual(self.sluice.all_stored(), [])
        # A new transaction has a fresh count.
        c.expect(250, "MAIL FROM:<a@example.net>\r\n")
        c.expect(250, "RCPT TO:<u1@example.test>\r\n")


class FewRecipients(SluiceTestCase):
    server_extra = "max_recipients = 3,"

    def test_configurable_limit(self):
        c = self.session()
        c.expect(250, "MAIL FROM:<a@example.net>\r\n")
        for i in range(3):
            c.expect(250, "RCPT TO:<u%d@example.test>\r\n" % i)
        self.assertIn("452 4.5.3", c.expect(452, "RCPT TO:<u3@example.test>\r\n"))
        c.expect(354, "DATA\r\n")
        c.expect(250, "Subject: three\r\n\r\nthree\r\n.\r\n")
        for i in range(3):
            self.assertEqual(len(self.sluice.maildir("example.test", "u%d" % i)), 1)
        self.assertEqual(len(self.sluice.all_stored()), 3)


class Size(SluiceTestCase):
    server_extra = "max_message_size = 4096,"

    def test_announced_size(self):
        c = self.session()
        self.assertIn("SIZE 4096", c.expect(250, "EHLO again.example.net\r\n"))
        self.assertIn("552 5.3.4", c.expect(552, "MAIL FROM:<a@example.net> SIZE=4097\r\n"))
        # No transaction was started by the refused MAIL.
        self.assertIn("503 5.5.1", c.expect(503, "RCPT TO:<user@example.test>\r\n"))
        c.expect(250, "MAIL FROM:<a@example.net> SIZE=4096\r\n")
        self.assertEqual(self.sluice.all_stored(), [])

    def test_actual_size(self):
        c = self.session()
        c.expect(250, "MAIL FROM:<a@example.net> SIZE=100\r\n")  # lies about the size
        c.expect(250, "RCPT TO:<user@example.test>\r\n")
        c.expect(354, "DATA\r\n")
        c.send(b"Subject: big\r\n\r\n" + (b"x" * 98 + b"\r\n") * 41 + b".\r\n")
        self.assertIn("552 5.3.4", c.expect(552))
        c.expect(250, "NOOP\r\n")
        self.assertEqual(self.sluice.all_stored(), [])
        # Exactly at the limit is fine (content octets after unstuffing, CRLFs included).
        c.expect(250, "MAIL FROM:<a@example.net>\r\n")
        c.expect(250, "RCPT TO:<user@example.test>\r\n")
        c.expect(354, "DATA\r\n")
        body = b"Subject: fits\r\n\r\n" + (b"f" * 78 + b"\r\n") * 50 + b"g" * 77 + b"\r\n"
        self.assertEqual(len(body), 4096)
        c.expect(250, body + b".\r\n")
        self.assertEqual(len(self.sluice.all_stored()), 1)

    def test_huge_message_is_read_to_its_end(self):
        c = self.session()
        c.expect(250, "MAIL FROM:<a@example.net>\r\n")
        c.expect(250, "RCPT TO:<user@example.test>\r\n")
        c.expect(354, "DATA\r\n")
        c.send(b"Subject: huge\r\n\r\n" + (b"h" * 998 + b"\r\n") * 5000 + b".\r\nNOOP\r\n")
        self.assertIn("552 5.3.4", c.expect(552))
        c.expect(250)  # the NOOP after the end is a command again
        self.assertEqual(self.sluice.all_stored(), [])


class Errors(SluiceTestCase):
    server_extra = "max_errors = 3,"

    def test_too_many_errors(self):
        c = self.session()
        self.assertIn("500 5.5.2", c.expect(500, "FROB\r\n"))
        self.assertIn("501 5.5.4", c.expect(501, "MAIL FROM:<a@example.net> SIZE=x\r\n"))
        c.expect(250, "NOOP\r\n")
        self.assertIn("500 5.5.2", c.expect(500, "FROB\r\n"))
        self.assertIn("421 4.7.0", c.expect(421))
        self.assertTrue(c.closed())
        self.assertEqual(self.sluice.all_stored(), [])

    def test_pipelined_errors_stop_at_the_limit(self):
        c = self.session()
        c.send(b"FROB\r\n" * 10 + b"NOOP\r\n")
        for _ in range(3):
            c.expect(500)
        self.assertIn("421 4.7.0", c.expect(421))
        self.assertTrue(c.closed())
        self.assertEqual(c.buf, b"")  # nothing after the 421
        self.assertEqual(self.sluice.all_stored(), [])


class CommandTimeout(SluiceTestCase):
    server_extra = "command_timeout = 2,"

    def test_idle_client(self):
        c = self.sluice.raw(timeout=30)
        c.expect(220)
        self.assertIn("421 4.4.2", c.expect(421))
        self.assertTrue(c.closed())
        self.assertEqual(self.sluice.all_stored(), [])

    def test_idle_after_ehlo(self):
        c = self.session()
        c.expect(250, "MAIL FROM:<a@example.net>\r\n")
        self.assertIn("421 4.4.2", c.expect(421))
        self.assertTrue(c.closed())
        self.assertEqual(self.sluice.all_stored(), [])

    def test_silent_after_starttls(self):
        """A client that asks for TLS and then never starts the handshake is cut off too."""
        c = self.session()
        c.expect(220, "STARTTLS\r\n")
        self.assertTrue(c.closed(timeout=30))
        self.assertEqual(self.sluice.all_stored(), [])

    def test_slow_drip_command(self):
        c = self.session()
        got, closed = drip(c, b"NOOP " + b"x" * 100)
        self.assertTrue(closed, "a command line dripped for 20 s was never cut off: %r" % got)
        self.assertIn(b"421 4.4.2", got + c.buf)
        self.assertEqual(self.sluice.all_stored(), [])


class DataTimeout(SluiceTestCase):
    server_extra = "data_timeout = 2,"

    def test_slow_drip_data(self):
        c = self.session()
        c.expect(250, "MAIL FROM:<a@example.net>\r\n")
        c.expect(250, "RCPT TO:<user@example.test>\r\n")
        c.expect(354, "DATA\r\n")
        # Complete lines, each one byte at a time: the DATA phase as a whole is bounded.
        got, closed = drip(c, b"Subject: drip\r\n\r\n" + b"d\r\n" * 50)
        self.assertTrue(closed, "DATA dripped for 20 s was never cut off: %r" % got)
        self.assertIn(b"421 4.4.2", got + c.buf)
        self.assertEqual(self.sluice.all_stored(), [])
        self.sluice.wait_log(r"result=\"not accepted\" error=\"timeout during DATA\"")
        d = self.session()
        d.expect(221, "QUIT\r\n")


class PipeliningFlood(SluiceTestCase):
    def test_client_that_does_not_read_its_replies(self):
        """50000 pipelined commands while the client reads nothing at first: the server stops
        reading when its output backs up instead of buffering without bound, and later answers
        every command, in order."""
        c = self.session()
        n = 50000
        wire = b"".join(b"NOOP %d\r\n" % i if i % 2 else b"RSET\r\n" for i in range(n))
        sender = threading.Thread(target=c.send, args=(wire + b"QUIT\r\n",))
        sender.start()
        time.sleep(1)  # let the replies back up
        for i in range(n):
            code, text = c.reply()
            self.assertEqual(code, 250, text)
        c.expect(221)
        sender.join()
        self.assertTrue(c.closed())
        self.assertEqual(self.sluice.all_stored(), [])


def connect_from(port, source_ip):
    s = socket.socket()
    s.settimeout(10)
    s.bind((source_ip, 0))
    s.connect(("127.0.0.1", port))
    c = RawClient.__new__(RawClient)
    c.sock, c.buf = s, b""
    return c


class Connections(SluiceTestCase):
    server_extra = "max_connections = 3, max_connections_per_ip = 2,"

    def refused(self, c):
        text = c.expect(421)
        self.assertIn("421 4.7.0", text)
        self.assertTrue(c.closed())
        return text

    def connect_until_banner(self, source_ip):
        """After a session ends the server frees its slot; retry until it has."""
        deadline = time.time() + 10
        while True:
            c = connect_from(self.sluice.port, source_ip)
            self.sluice.clients.append(c)
            code, text = c.reply()
            if code == 220 or time.time() > deadline:
                return code, text
            c.close()
            time.sleep(0.05)

    def test_per_ip_then_total(self):
        a = self.sluice.raw()
        a.expect(220)
        b = self.sluice.raw()
        b.expect(220)
        text = self.refused(self.sluice.raw())
        self.assertIn("your address", text)
        # Another client address still gets in, up to the total.
        c = connect_from(self.sluice.port, "127.0.0.2")
        self.sluice.clients.append(c)
        c.expect(220)
        d = connect_from(self.sluice.port, "127.0.0.3")
        self.sluice.clients.append(d)
        self.assertNotIn("your address", self.refused(d))
        # A freed slot can be used again.
        a.expect(221, "QUIT\r\n")
        self.assertTrue(a.closed())
        code, text = self.connect_until_banner("127.0.0.1")
        self.assertEqual(code, 220, text)
        # The refused connections did not disturb the live ones.
        b.expect(250, "NOOP\r\n")
        c.expect(250, "NOOP\r\n")
        self.assertEqual(self.sluice.all_stored(), [])


def listen_backlog(port):
    """The backlog the kernel holds for the listener on port: ss shows it as Send-Q."""
    out = subprocess.run(["ss", "-Hltn", "sport = :%d" % port], capture_output=True, text=True,
                         check=True).stdout.split()
    return int(out[2])


class ListenBacklog(SluiceTestCase):
    server_extra = "listen_backlog = 7,"

    def test_configured_backlog_reaches_the_kernel(self):
        self.assertEqual(listen_backlog(self.sluice.port), 7)
        c = self.sluice.raw()
        c.expect(220)


class DefaultListenBacklog(SluiceTestCase):
    def test_default_is_somaxconn_as_capped_by_the_kernel(self):
        with open("/proc/sys/net/core/somaxconn") as f:
            cap = int(f.read())
        self.assertEqual(listen_backlog(self.sluice.port), min(socket.SOMAXCONN, cap))


if __name__ == "__main__":
    unittest.main()
