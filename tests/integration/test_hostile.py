"""Hostile peers: bare CR/LF and NUL in commands, over-long lines, STARTTLS plaintext injection,
clients that vanish mid-DATA, EHLO garbage. Every case checks the reply (code and enhanced code)
and that nothing reached any Maildir."""
import socket
import ssl
import unittest

from sluice_harness import SluiceTestCase, read_file, strip_trace, tls_client_context


class CommandLines(SluiceTestCase):
    def assert_nothing_stored(self):
        self.assertEqual(self.sluice.all_stored(), [])

    def assert_refused_and_closed(self, c, wire, code=550, enhanced="5.5.2"):
        c.send(wire)
        text = c.expect(code)
        self.assertIn("%d %s" % (code, enhanced), text)
        self.assertTrue(c.closed())

    def test_bare_lf_in_command_closes(self):
        c = self.session()
        self.assert_refused_and_closed(c, b"NOOP\n")
        self.assert_nothing_stored()

    def test_bare_lf_ends_nothing_mid_transaction(self):
        c = self.session()
        c.expect(250, "MAIL FROM:<a@example.net>\r\n")
        c.expect(250, "RCPT TO:<user@example.test>\r\n")
        # A bare-LF DATA would start a message in a lenient server; here it ends the session.
        self.assert_refused_and_closed(c, b"DATA\nSubject: x\r\n\r\nbody\r\n.\r\n")
        self.assert_nothing_stored()

    def test_bare_lf_before_banner_reply(self):
        c = self.sluice.raw()
        c.expect(220)
        self.assert_refused_and_closed(c, b"EHLO client.example.net\nMAIL FROM:<a@example.net>\r\n")
        self.assert_nothing_stored()

    def test_bare_cr_in_command_closes(self):
        c = self.session()
        self.assert_refused_and_closed(c, b"NOOP\rRSET\r\n")
        self.assert_nothing_stored()

    def test_bare_cr_inside_address(self):
        c = self.session()
        c.expect(250, "MAIL FROM:<a@example.net>\r\n")
        self.assert_refused_and_closed(
            c, b"RCPT TO:<user@example.test>\rRCPT TO:<x@example.test>\r\n")
        self.assert_nothing_stored()

    def test_nul_in_command_refused_session_continues(self):
        c = self.session()
        self.assertIn("500 5.5.2", c.expect(500, b"NOOP\x00\r\n"))
        self.assertIn("500 5.5.2", c.expect(500, b"MAIL FROM:<a@exa\x00mple.net>\r\n"))
        self.assertIn("500 5.5.2", c.expect(500, b"\x00\r\n"))
        c.expect(250, "NOOP\r\n")
        c.expect(250, "MAIL FROM:<a@example.net>\r\n")
        self.assertIn("500 5.5.2", c.expect(500, b"RCPT TO:<user@example.test>\x00\r\n"))
        # The NUL command did not add the recipient.
        self.assertIn("554 5.5.1", c.expect(554, "DATA\r\n"))
        c.expect(221, "QUIT\r\n")
        self.assert_nothing_stored()

    def test_command_line_limit_is_512_octets(self):
        c = self.session()
        # Exactly 512 octets with CRLF: fine.
        line = b"NOOP " + b"x" * (512 - 7) + b"\r\n"
        self.assertEqual(len(line), 512)
        c.expect(250, line)
        # 513: refused, and the session goes on.
        self.assertIn("500 5.5.2", c.expect(500, b"NOOP " + b"x" * (513 - 7) + b"\r\n"))
        c.expect(250, "NOOP\r\n")
        self.assert_nothing_stored()

    def test_long_command_line_in_pieces_refused_once(self):
        c = self.session()
        c.send(b"MAIL FROM:<" + b"a" * 400)
        c.send(b"b" * 400)
        c.send(b"c" * 4000)
        c.send(b"@example.net>\r\nNOOP\r\n")
        self.assertIn("500 5.5.2", c.expect(500))
        c.expect(250)  # the NOOP: the long line was refused exactly once
        # The refused MAIL did not start a transaction.
        self.assertIn("503 5.5.1", c.expect(503, "RCPT TO:<user@example.test>\r\n"))
        c.expect(221, "QUIT\r\n")
        self.assert_nothing_stored()

    def test_ehlo_helo_garbage(self):
        c = self.sluice.raw()
        c.expect(220)
        for arg in (b"\x01\x02", b"caf\xc3\xa9.example", b"x" * 300, b"a\tb"):
            text = c.expect(501, b"EHLO " + arg + b"\r\n")
            self.assertIn("501 5.5.4", text)
            self.assertIn("501 5.5.4", c.expect(501, b"HELO " + arg + b"\r\n"))
        self.assertIn("501 5.5.4", c.expect(501, "EHLO\r\n"))
        self.assertIn("501 5.5.4", c.expect(501, "HELO \r\n"))
        self.assertIn("500 5.5.2", c.expect(500, b"EHLO a\x00b\r\n"))
        # No EHLO was taken: a transaction cannot start yet.
        self.assertIn("503 5.5.1", c.expect(503, "MAIL FROM:<a@example.net>\r\n"))
        c.expect(250, "EHLO [192.0.2.1]\r\n")
        c.expect(250, "MAIL FROM:<a@example.net>\r\n")
        self.assert_nothing_stored()


class Data(SluiceTestCase):
    server_extra = "max_errors = 100,"

    def start_data(self, c):
        c.expect(250, "MAIL FROM:<a@example.net>\r\n")
        c.expect(250, "RCPT TO:<user@example.test>\r\n")
        c.expect(354, "DATA\r\n")

    def test_nul_in_data_refused_session_continues(self):
        c = self.session()
        self.start_data(c)
        c.send(b"Subject: nul\r\n\r\nbefore\x00after\r\n.\r\n")
        self.assertIn("550 5.6.0", c.expect(550))
        self.assertEqual(self.sluice.all_stored(), [])
        self.start_data(c)
        c.expect(250, "Subject: ok\r\n\r\nfine\r\n.\r\n")
        self.assertEqual(len(self.sluice.all_stored()), 1)

    def test_text_line_limit(self):
        c = self.session()
        self.start_data(c)
        # 999 octets before CRLF: over the limit of RFC 5321 §4.5.3.1.6; refused.
        c.send(b"Subject: long\r\n\r\n" + b"y" * 999 + b"\r\nafter\r\n.\r\n")
        self.assertIn("550 5.5.2", c.expect(550))
        self.assertEqual(self.sluice.all_stored(), [])
        # The session goes on; a 998-octet line is fine and stored as sent.
        self.start_data(c)
        body = b"Subject: ok\r\n\r\n" + b"z" * 998 + b"\r\n"
        c.expect(250, body + b".\r\n")
        stored = self.sluice.all_stored()
        self.assertEqual(len(stored), 1)
        self.assertEqual(strip_trace(read_file(stored[0])), body)

    def test_dot_stuffed_line_limit_is_after_unstuffing(self):
        """The 998-octet limit is on the text line, not on what travels (RFC 5321 §4.5.2,
        §4.5.3.1.6): a 998-octet line starting with "." is sent as 999 octets + CRLF and is
        accepted, stored with its stuffed dot removed; 999 octets after unstuffing is not."""
        c = self.session()
        self.start_data(c)
        head = b"Subject: stuffed\r\n\r\n"
        line = b"." + b"s" * 997  # the text line: 998 octets, starting with "."
        self.assertEqual(len(line), 998)
        wire = b"." + line + b"\r\n"  # stuffed: 999 octets + CRLF on the wire
        self.assertEqual(len(wire), 1001)
        c.expect(250, head + wire + b"after\r\n.\r\n")
        stored = self.sluice.all_stored()
        self.assertEqual(len(stored), 1)
        self.assertEqual(strip_trace(read_file(stored[0])), head + line + b"\r\nafter\r\n")
        # A stuffed dot that is not part of the text (a line of 998 "t" sent as "." + 998).
        self.start_data(c)
        c.expect(250, head + b"." + b"t" * 998 + b"\r\n.\r\n")
        stored = self.sluice.all_stored()
        self.assertEqual(len(stored), 2)
        self.assertIn(head + b"t" * 998 + b"\r\n", [strip_trace(read_file(f)) for f in stored])
        # 999 octets after unstuffing (1000 on the wire): refused, the session goes on.
        self.start_data(c)
        c.send(head + b".." + b"u" * 998 + b"\r\n.\r\n")
        self.assertIn("550 5.5.2", c.expect(550))
        self.start_data(c)
        c.send(head + b"." + b"u" * 999 + b"\r\n.\r\n")
        self.assertIn("550 5.5.2", c.expect(550))
        c.expect(250, "NOOP\r\n")
        self.assertEqual(len(self.sluice.all_stored()), 2)

    def test_very_long_text_line(self):
        c = self.session()
        self.start_data(c)
        c.send(b"Subject: long\r\n\r\n" + b"q" * 200000 + b"\r\n.\r\n")
        self.assertIn("550 5.5.2", c.expect(550))
        c.expect(250, "NOOP\r\n")
        self.assertEqual(self.sluice.all_stored(), [])

    def test_client_disconnects_mid_data(self):
        c = self.session()
        self.start_data(c)
        c.send(b"Subject: half\r\n\r\nhalf a message\r\n.")
        c.close()
        self.sluice.wait_log(r"result=\"not accepted\"")
        self.assertEqual(self.sluice.all_stored(), [])
        # The server keeps serving.
        d = self.session()
        self.start_data(d)
        d.expect(250, "Subject: whole\r\n\r\nwhole\r\n.\r\n")
        stored = self.sluice.all_stored()
        self.assertEqual(len(stored), 1)
        self.assertTrue(read_file(stored[0]).endswith(b"\r\n\r\nwhole\r\n"))

    def test_client_resets_connection_mid_data(self):
        c = self.session()
        self.start_data(c)
        c.send(b"Subject: rst\r\n\r\n" + b"r" * 100000)
        # SO_LINGER 0: close with a TCP RST instead of a FIN.
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        c.close()
        self.sluice.wait_log(r"result=\"not accepted\"")
        self.assertEqual(self.sluice.all_stored(), [])
        d = self.session()
        d.expect(221, "QUIT\r\n")


class StartTLS(SluiceTestCase):
    def handshake(self, c):
        self.assertEqual(c.buf, b"")
        c.sock = tls_client_context().wrap_socket(c.sock)
        return c

    def test_plaintext_injection_is_discarded(self):
        c = self.session()
        c.send(b"STARTTLS\r\nRSET\r\n")
        self.assertIn("220 2.0.0", c.expect(220))
        self.handshake(c)
        # The injected RSET would answer 250 first; a fresh session answers 503 to MAIL.
        self.assertIn("503 5.5.1", c.expect(503, "MAIL FROM:<a@example.net>\r\n"))
        text = c.expect(250, "EHLO client.example.net\r\n")
        self.assertNotIn("STARTTLS", text)
        c.expect(250, "NOOP\r\n")
        c.expect(221, "QUIT\r\n")
        self.assertEqual(self.sluice.all_stored(), [])

    def test_injected_transaction_never_runs(self):
        c = self.session()
        c.send(b"STARTTLS\r\nMAIL FROM:<evil@example.net>\r\nRCPT TO:<user@example.test>\r\n"
               b"DATA\r\nSubject: injected\r\n\r\ninjected\r\n.\r\n")
        c.expect(220)
        self.handshake(c)
        c.expect(250, "EHLO client.example.net\r\n")
        self.assertIn("503 5.5.1", c.expect(503, "RCPT TO:<user@example.test>\r\n"))
        c.expect(221, "QUIT\r\n")
        self.assertTrue(c.closed())
        self.assertEqual(self.sluice.all_stored(), [])

    def test_transaction_before_starttls_is_forgotten(self):
        c = self.session()
        c.expect(250, "MAIL FROM:<a@example.net>\r\n")
        c.expect(250, "RCPT TO:<user@example.test>\r\n")
        c.expect(220, "STARTTLS\r\n")
        self.handshake(c)
        c.expect(250, "EHLO client.example.net\r\n")
        self.assertIn("503 5.5.1", c.expect(503, "DATA\r\n"))
        c.expect(250, "MAIL FROM:<a@example.net>\r\n")
        c.expect(250, "RCPT TO:<user@example.test>\r\n")
        c.expect(354, "DATA\r\n")
        c.expect(250, "Subject: tls\r\n\r\nsecret\r\n.\r\n")
        self.assertIn("554 5.5.1", c.expect(554, "STARTTLS\r\n"))
        self.assertEqual(len(self.sluice.all_stored()), 1)

    def test_garbage_instead_of_handshake(self):
        c = self.session()
        c.expect(220, "STARTTLS\r\n")
        c.send(b"this is not a TLS ClientHello\r\n" * 10)
        self.assertTrue(c.closed())
        d = self.session()
        d.expect(221, "QUIT\r\n")
        self.assertEqual(self.sluice.all_stored(), [])


if __name__ == "__main__":
    unittest.main()
