"""SMTP smuggling (shared/smtp-smuggling.md): every fake end-of-data sequence, followed by a
smuggled second transaction and then the real CRLF.CRLF, must be refused with 550 5.5.2 and the
connection closed right after it (no 221: that answers QUIT only, RFC 5321 §4.1.1.10), and
nothing at all (certainly no smuggled message) stored."""
import unittest

from sluice_harness import SluiceTestCase

# Bytes after the first message's text, one per row of the table.
FAKE_ENDS = {
    "lf_dot_lf": b"\n.\n",
    "lf_dot_crlf": b"\n.\r\n",
    "crlf_dot_lf": b"\r\n.\n",
    "cr_dot_cr": b"\r.\r",
    "cr_dot_crlf": b"\r.\r\n",
    "crlf_dot_cr_other": b"\r\n.\rX",
    "crlf_dot_cr_cr": b"\r\n.\r\r",
    "lf_dot_nul": b"\n.\x00\n",
    "lf_dot_nul_crlf": b"\n.\x00\r\n",
    "lf_dot_other": b"\n.x\r\n",
    "lf_nul_dot_lf": b"\n\x00.\n",
}

FIRST = (b"From: alice@example.net\r\nTo: user@example.test\r\nSubject: first\r\n\r\n"
         b"first message")
SMUGGLED = (b"MAIL FROM:<ceo@example.test>\r\nRCPT TO:<user@example.test>\r\nDATA\r\n"
            b"From: ceo@example.test\r\nTo: user@example.test\r\nSubject: smuggled\r\n\r\n"
            b"wire the money\r\n")
REAL_END = b"\r\n.\r\n"


class Smuggling(SluiceTestCase):
    def smuggle(self, fake_end, packets=1):
        c = self.session()
        c.expect(250, "MAIL FROM:<alice@example.net>\r\n")
        c.expect(250, "RCPT TO:<user@example.test>\r\n")
        c.expect(354, "DATA\r\n")
        wire = FIRST + fake_end + SMUGGLED + REAL_END
        if packets == 1:
            c.send(wire)
        else:  # the fake end in its own packet, as a relaying MTA would flush it
            c.send(FIRST)
            c.send(fake_end)
            c.send(SMUGGLED + REAL_END)
        code, text = c.reply()
        self.assertEqual(code, 550, text)
        self.assertIn("550 5.5.2", text)
        self.assertTrue(c.closed())
        self.assertEqual(c.buf, b"")  # the 550 was the last word
        self.assertEqual(self.sluice.all_stored(), [])
        # The server is still serving, and the refusal is in the log.
        self.sluice.wait_log(r"result=\"550 5\.5\.2")
        d = self.session()
        d.expect(221, "QUIT\r\n")


def _make(name, fake_end):
    def test(self):
        self.smuggle(fake_end)

    def test_bdat(self):
        """The same bytes in one BDAT chunk (RFC 3030): never an end nor a command, and the
        bare CR or LF refuses the message at LAST as at DATA's end."""
        c = self.session()
        c.expect(250, "MAIL FROM:<alice@example.net>\r\n")
        c.expect(250, "RCPT TO:<user@example.test>\r\n")
        chunk = FIRST + fake_end + SMUGGLED + REAL_END
        c.send(b"BDAT %d LAST\r\n" % len(chunk) + chunk + b"QUIT\r\n")
        code, text = c.reply()
        self.assertEqual(code, 550, text)
        self.assertIn("550 5.5.2", text)
        self.assertTrue(c.closed())
        self.assertEqual(c.buf, b"")
        self.assertEqual(self.sluice.all_stored(), [])

    def test_split(self):
        self.smuggle(fake_end, packets=3)
    test.__doc__ = "fake end %r in one packet" % fake_end
    test_split.__doc__ = "fake end %r in its own packet" % fake_end
    setattr(Smuggling, "test_" + name, test)
    setattr(Smuggling, "test_" + name + "_bdat", test_bdat)
    setattr(Smuggling, "test_" + name + "_split", test_split)


for _name, _end in FAKE_ENDS.items():
    _make(_name, _end)


class SmugglingThenPipelinedCommands(SluiceTestCase):
    def test_commands_after_refusal_are_never_run(self):
        """Even when the client pipelines a whole transaction after the real end, the session
        is closed after the 550 and the pipelined transaction (and its QUIT) never happens."""
        c = self.session()
        c.expect(250, "MAIL FROM:<alice@example.net>\r\n")
        c.expect(250, "RCPT TO:<user@example.test>\r\n")
        c.expect(354, "DATA\r\n")
        c.send(FIRST + b"\n.\n" + SMUGGLED + REAL_END + SMUGGLED + REAL_END + b"QUIT\r\n")
        self.assertIn("550 5.5.2", c.expect(550))
        self.assertTrue(c.closed())
        self.assertEqual(c.buf, b"")  # no 250 for the pipelined commands, no 221 for the QUIT
        self.assertEqual(self.sluice.all_stored(), [])


class SmugglingAtTheErrorLimit(SluiceTestCase):
    server_extra = "max_errors = 2,"

    def test_one_refusal_then_close(self):
        """The refusal that ends the session is not also counted as an error: the client gets
        the 550 and then the connection closes, never a stray 421 (nor a 221) after it."""
        c = self.session()
        self.assertIn("500 5.5.2", c.expect(500, "FROB\r\n"))
        c.expect(250, "MAIL FROM:<alice@example.net>\r\n")
        c.expect(250, "RCPT TO:<user@example.test>\r\n")
        c.expect(354, "DATA\r\n")
        c.send(FIRST + b"\r.\r" + SMUGGLED + REAL_END)
        self.assertIn("550 5.5.2", c.expect(550))
        self.assertTrue(c.closed())
        self.assertEqual(c.buf, b"")
        self.assertEqual(self.sluice.all_stored(), [])


if __name__ == "__main__":
    unittest.main()
