"""server { bare_newline, bare_newline_exclusions, bare_newline_reject_code }: Postfix's
smtpd_forbid_bare_newline. reject (the default) refuses a bare LF in a command or in DATA and
closes; normalize takes the line as ending in CRLF, in commands and DATA, but only CRLF.CRLF
ends DATA, so no mix of line endings can smuggle a second message. Exclusions normalize the
clients they list; the refusal's code can be 521."""
import unittest

from sluice_harness import SluiceTestCase, read_file
import test_config
from test_config import RULES, SERVER
from test_session_end import until_closed

SMUGGLED = b"MAIL FROM:<evil@example.net>\r\nRCPT TO:<user@example.test>\r\nDATA\r\nforged\r\n"


def body_of(path):
    """The message as sluice stored it, from its Subject (every test message starts there)."""
    data = read_file(path)
    return data[data.index(b"Subject:"):]


class Base(SluiceTestCase):
    def start_data(self, c):
        c.expect(250, "MAIL FROM:<a@example.net>\r\n")
        c.expect(250, "RCPT TO:<user@example.test>\r\n")
        c.expect(354, "DATA\r\n")


class Normalize(Base):
    server_extra = 'bare_newline = "normalize",'

    def test_bare_lf_lines_are_stored_with_crlf(self):
        c = self.session()
        self.start_data(c)
        c.expect(250, b"Subject: lf\n\nline one\nline two\r\n.\r\n")
        (path,) = self.sluice.all_stored()
        self.assertEqual(body_of(path), b"Subject: lf\r\n\r\nline one\r\nline two\r\n")

    def test_a_line_after_a_bare_lf_is_unstuffed_but_never_ends_the_data(self):
        c = self.session()
        self.start_data(c)
        # "\n.\r\n" would be CRLF.CRLF if the LF counted as CRLF: here it is content.
        c.expect(250, b"Subject: s\r\n\r\nfirst\n.\r\n" + SMUGGLED + b"..dotted\n.\n\r\n.\r\n")
        stored = self.sluice.all_stored()
        self.assertEqual(len(stored), 1)  # one message: the "smuggled" one is its content
        self.assertEqual(body_of(stored[0]), b"Subject: s\r\n\r\nfirst\r\n\r\n" + SMUGGLED +
                         b".dotted\r\n\r\n\r\n")
        c.expect(250, "NOOP\r\n")

    def test_commands_may_end_in_a_bare_lf(self):
        c = self.session()
        c.expect(250, b"NOOP\n")
        c.expect(250, b"MAIL FROM:<a@example.net>\n")
        c.expect(250, b"RCPT TO:<user@example.test>\n")
        c.expect(354, b"DATA\n")
        c.expect(250, b"Subject: x\n\nbody\r\n.\r\n")
        self.assertEqual(len(self.sluice.all_stored()), 1)

    def test_a_bare_cr_is_still_refused(self):
        c = self.session()
        lines = until_closed(c, b"NOOP\rMAIL FROM:<a@example.net>\r\n")
        self.assertEqual(lines, ["550 5.5.2 Error: bare <CR> received"])
        c = self.session()
        self.start_data(c)
        lines = until_closed(c, b"Subject: x\r\n\r\nbare\rcr\r\n.\r\n")
        self.assertTrue(lines[0].startswith("550 5.5.2 Error: bare <CR> received"), lines)
        self.assertEqual(self.sluice.all_stored(), [])


class ExcludedClients(Base):
    server_extra = 'bare_newline_exclusions = { "127.0.0.0/8" },'

    def test_an_excluded_client_is_normalized(self):
        c = self.session()
        self.start_data(c)
        c.expect(250, b"Subject: lf\n\nold sender\r\n.\r\n")
        self.assertEqual(len(self.sluice.all_stored()), 1)


class NotExcluded(Base):
    server_extra = 'bare_newline_exclusions = { "10.0.0.0/8", "2001:db8::/32" },'

    def test_other_clients_are_refused(self):
        c = self.session()
        self.start_data(c)
        lines = until_closed(c, b"Subject: lf\n\nx\r\n.\r\n")
        self.assertTrue(lines[0].startswith("550 5.5.2 Error: bare <LF> received"), lines)
        self.assertEqual(self.sluice.all_stored(), [])


class RejectCode521(Base):
    server_extra = "bare_newline_reject_code = 521,"

    def test_the_refusal_says_521_then_closes(self):
        c = self.session()
        self.start_data(c)
        lines = until_closed(c, b"Subject: x\r\n\r\nbare\nlf\r\n.\r\n")
        self.assertEqual(len(lines), 1, lines)
        self.assertTrue(lines[0].startswith("521 5.5.2 Error: bare <LF> received; message "
                                            "refused"), lines)
        c = self.session()
        self.assertEqual(until_closed(c, b"NOOP\n"), ["521 5.5.2 Error: bare <LF> received"])
        self.assertEqual(self.sluice.all_stored(), [])


class ConfigErrors(unittest.TestCase):
    def test_bad_values(self):
        # Through the module: a class imported by name would be collected and run here too.
        cases = test_config.CheckErrors("assertConfigError")
        for extra, fragment in (
                ('bare_newline = "allow",',
                 'server: bare_newline must be "reject" or "normalize", got "allow"'),
                ("bare_newline_reject_code = 530,",
                 "server: bare_newline_reject_code must be 550 or 521, got 530"),
                ("bare_newline_reject_code = 554,",
                 "field 'bare_newline_reject_code' must be between 521 and 550"),
                ('bare_newline_exclusions = { "10.0.0.1/8" },', "10.0.0.1/8")):
            with self.subTest(extra=extra):
                cases.assertConfigError(SERVER.replace("}\n", "  %s\n}\n" % extra, 1) + RULES, 1,
                                        fragment)


if __name__ == "__main__":
    unittest.main()
