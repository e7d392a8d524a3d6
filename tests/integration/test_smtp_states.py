"""Every SMTP command in every state of a session, with the exact reply (code, enhanced code and
text): before HELO/EHLO, after it, after MAIL, after a recipient, after STARTTLS, and XCLIENT
from an authorized and an unauthorized client. The replies are the server's contract with the
client; the session's command table must produce them byte for byte."""
import signal
import ssl
import unittest

from sluice_harness import SluiceTestCase, tls_client_context

NEED_HELO = "503 5.5.1 Error: send HELO/EHLO first"
NEED_MAIL = "503 5.5.1 Error: need MAIL command"
NESTED = "503 5.5.1 Error: nested MAIL command"
NO_RCPT = "554 5.5.1 Error: no valid recipients"
IN_TXN = "503 5.5.1 Error: MAIL transaction in progress"
NOT_AUTHORIZED = "550 5.7.0 Error: insufficient authorization"
OK = "250 2.0.0 Ok"
MAIL_OK = "250 2.1.0 Ok"
RCPT_OK = "250 2.1.5 Ok"
HELP = ("214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT HELP VRFY "
        "STARTTLS; see RFC 5321")
VRFY = "252 2.0.0 Cannot VRFY user, but will accept message and attempt delivery"
EXPN = "502 5.5.1 Error: EXPN is not supported"
UNKNOWN = "500 5.5.2 Error: command not recognized"
TLS_READY = "220 2.0.0 Ready to start TLS"
TLS_ACTIVE = "554 5.5.1 Error: TLS already active"
NO_TLS = "502 5.5.1 Error: command not implemented"

MAIL = "MAIL FROM:<a@example.net>\r\n"
RCPT = "RCPT TO:<user@example.test>\r\n"
EHLO_PLAIN = ("250-mx.example.test\n250-PIPELINING\n250-SIZE 26214400\n250-8BITMIME\n"
              "250-SMTPUTF8\n250-DSN\n250-CHUNKING\n250 ENHANCEDSTATUSCODES")
AFTER_BDAT = "503 5.5.1 Error: BDAT transaction in progress (send BDAT ... LAST or RSET)"
BAD_BDAT = "501 5.5.4 Syntax: BDAT chunk-size [LAST]"
# A refused chunk is still read: its octets are a command that must never run (a second reply
# would be taken for the answer to the next line and fail the comparison).
BDAT_NOOP = "BDAT 6\r\nNOOP\r\n"


class StatesCase(SluiceTestCase):
    def say(self, c, line, want):
        """Sends one command and checks the whole reply text."""
        self.assertEqual(self.reply(c, line)[1], want, "reply to %r" % line)

    def reply(self, c, line):
        c.send(line)
        return c.reply()

    def replies(self, c, pairs):
        for line, want in pairs:
            self.say(c, line, want)

    def banner(self):
        c = self.sluice.raw()
        self.assertEqual(c.reply(), (220, "220 mx.example.test ESMTP sluice"))
        return c

    # The commands that answer the same in every state and change nothing.
    def harmless(self, c):
        self.replies(c, [("NOOP\r\n", OK), ("HELP\r\n", HELP), ("VRFY user\r\n", VRFY),
                         ("EXPN list\r\n", EXPN), ("FROB\r\n", UNKNOWN)])


class PlainStates(StatesCase):
    tls = False

    def test_before_helo(self):
        c = self.banner()
        self.harmless(c)
        self.replies(c, [(MAIL, NEED_HELO), (RCPT, NEED_MAIL), ("DATA\r\n", NEED_MAIL),
                         (BDAT_NOOP, NEED_MAIL), ("BDAT 0 LAST\r\n", NEED_MAIL),
                         ("BDAT -1\r\n", BAD_BDAT),
                         ("RSET\r\n", OK), ("STARTTLS\r\n", NO_TLS),
                         ("XCLIENT ADDR=192.0.2.1\r\n", NOT_AUTHORIZED), (MAIL, NEED_HELO)])
        self.replies(c, [("QUIT\r\n", "221 2.0.0 Bye")])
        self.assertTrue(c.closed())

    def test_after_helo(self):
        c = self.banner()
        self.replies(c, [("HELO client.example.net\r\n", "250 mx.example.test")])
        self.harmless(c)
        self.replies(c, [(RCPT, NEED_MAIL), ("DATA\r\n", NEED_MAIL), ("RSET\r\n", OK),
                         (BDAT_NOOP, NEED_MAIL), ("BDAT x\r\n", BAD_BDAT),
                         (RCPT, NEED_MAIL), ("EHLO client.example.net\r\n", EHLO_PLAIN),
                         (MAIL, MAIL_OK)])

    def test_after_mail(self):
        c = self.banner()
        self.replies(c, [("EHLO client.example.net\r\n", EHLO_PLAIN), (MAIL, MAIL_OK)])
        self.harmless(c)
        self.replies(c, [(MAIL, NESTED), ("DATA\r\n", NO_RCPT), (BDAT_NOOP, NO_RCPT),
                         ("BDAT 6 LAST\r\nNOOP\r\n", NO_RCPT),
                         ("RCPT TO:<nobody@elsewhere.example>\r\n",
                          "550 5.7.1 Relaying denied: this server does not accept mail for that domain"),
                         ("DATA\r\n", NO_RCPT), ("XCLIENT ADDR=192.0.2.1\r\n", NOT_AUTHORIZED),
                         ("RSET\r\n", OK), (RCPT, NEED_MAIL), (MAIL, MAIL_OK),
                         ("EHLO client.example.net\r\n", EHLO_PLAIN), (RCPT, NEED_MAIL)])

    def test_after_rcpt(self):
        c = self.banner()
        self.replies(c, [("EHLO client.example.net\r\n", EHLO_PLAIN), (MAIL, MAIL_OK),
                         (RCPT, RCPT_OK)])
        self.harmless(c)
        self.replies(c, [(MAIL, NESTED), (RCPT, "250 2.1.5 Ok (duplicate recipient)"),
                         ("RCPT TO:<user2@example.test>\r\n", RCPT_OK),
                         ("DATA\r\n", "354 End data with <CR><LF>.<CR><LF>")])
        c.send("Subject: s\r\n\r\nbody\r\n.\r\n")
        code, text = c.reply()
        self.assertEqual(code, 250, text)
        # After the message: no transaction, the HELO stands.
        self.replies(c, [(RCPT, NEED_MAIL), ("DATA\r\n", NEED_MAIL), (MAIL, MAIL_OK),
                         (RCPT, RCPT_OK), ("RSET\r\n", OK), ("DATA\r\n", NEED_MAIL)])

    def test_after_a_bdat_chunk(self):
        c = self.banner()
        self.replies(c, [("EHLO client.example.net\r\n", EHLO_PLAIN), (MAIL, MAIL_OK),
                         (RCPT, RCPT_OK), ("BDAT 14\r\nSubject: s\r\n\r\n",
                                           "250 2.0.0 14 octets received")])
        self.harmless(c)
        self.replies(c, [(MAIL, NESTED), (RCPT, AFTER_BDAT), ("DATA\r\n", AFTER_BDAT),
                         ("BDAT 1 2\r\n", BAD_BDAT), (BDAT_NOOP, "250 2.0.0 6 octets received")])
        code, text = self.reply(c, "BDAT 0 LAST\r\n")
        self.assertEqual(code, 250, text)
        self.assertIn("queued as", text)
        # After the message: no transaction, the HELO stands.
        self.replies(c, [(RCPT, NEED_MAIL), ("DATA\r\n", NEED_MAIL), (BDAT_NOOP, NEED_MAIL),
                         (MAIL, MAIL_OK), (RCPT, RCPT_OK),
                         ("BDAT 3\r\nabc", "250 2.0.0 3 octets received"), ("RSET\r\n", OK),
                         (RCPT, NEED_MAIL), (BDAT_NOOP, NEED_MAIL)])

    def test_errors_end_the_session_in_any_state(self):
        c = self.banner()
        for _ in range(19):
            self.say(c, MAIL, NEED_HELO)
        c.send(MAIL)
        self.assertEqual(c.reply(), (503, NEED_HELO))
        self.assertEqual(c.reply(),
                         (421, "421 4.7.0 mx.example.test Error: too many errors"))
        self.assertTrue(c.closed())


class TlsStates(StatesCase):
    def handshake(self, c):
        self.assertEqual(c.buf, b"")
        c.sock = tls_client_context().wrap_socket(c.sock)

    def test_starttls_in_a_transaction_starts_over(self):
        c = self.banner()
        ehlo = self.reply(c, "EHLO client.example.net\r\n")[1]
        self.assertIn("250-STARTTLS\n", ehlo)
        self.replies(c, [(MAIL, MAIL_OK), (RCPT, RCPT_OK), ("STARTTLS\r\n", TLS_READY)])
        self.handshake(c)
        # A fresh session: no HELO, no transaction, and STARTTLS is not offered again.
        self.replies(c, [(MAIL, NEED_HELO), (RCPT, NEED_MAIL), ("DATA\r\n", NEED_MAIL),
                         (BDAT_NOOP, NEED_MAIL), ("STARTTLS\r\n", TLS_ACTIVE),
                         ("EHLO client.example.net\r\n", EHLO_PLAIN), ("STARTTLS\r\n", TLS_ACTIVE),
                         (MAIL, MAIL_OK), ("STARTTLS\r\n", TLS_ACTIVE), (RCPT, RCPT_OK),
                         ("STARTTLS\r\n", TLS_ACTIVE)])
        self.harmless(c)
        self.replies(c, [("QUIT\r\n", "221 2.0.0 Bye")])

    def test_starttls_before_helo(self):
        c = self.banner()
        self.replies(c, [("STARTTLS\r\n", TLS_READY)])
        self.handshake(c)
        self.replies(c, [("STARTTLS\r\n", TLS_ACTIVE), (MAIL, NEED_HELO)])


class XclientStates(StatesCase):
    tls = False
    server_extra = 'xclient = { "127.0.0.1/32" },'

    def test_xclient_in_each_state(self):
        ehlo = EHLO_PLAIN.replace("250 ENHANCED",
                                  "250-XCLIENT ADDR NAME PORT PROTO HELO LOGIN DESTADDR DESTPORT\n250 ENHANCED")
        banner = "220 mx.example.test ESMTP sluice"
        c = self.banner()
        # Before HELO: allowed; the session starts over with a banner.
        self.replies(c, [("XCLIENT ADDR=192.0.2.1\r\n", banner), (MAIL, NEED_HELO),
                         ("EHLO client.example.net\r\n", ehlo),
                         ("XCLIENT ADDR=192.0.2.2\r\n", banner), (MAIL, NEED_HELO),
                         ("EHLO client.example.net\r\n", ehlo), (MAIL, MAIL_OK),
                         ("XCLIENT ADDR=192.0.2.3\r\n", IN_TXN), (RCPT, RCPT_OK),
                         ("XCLIENT ADDR=192.0.2.3\r\n", IN_TXN), ("RSET\r\n", OK),
                         # HELO= sets the HELO: MAIL is allowed at once.
                         ("XCLIENT ADDR=192.0.2.4 HELO=h.example.net\r\n", banner),
                         (MAIL, MAIL_OK), ("XCLIENT FOO=bar\r\n", IN_TXN), (RCPT, RCPT_OK),
                         # Outside a transaction the arguments are judged.
                         ("RSET\r\n", OK),
                         ("XCLIENT FOO=bar\r\n", "501 5.5.4 Bad XCLIENT attribute name"),
                         (MAIL, MAIL_OK), (RCPT, RCPT_OK),
                         ("BDAT 3\r\nabc", "250 2.0.0 3 octets received"),
                         ("XCLIENT ADDR=192.0.2.5\r\n", IN_TXN)])


TRANSACTION = ["EHLO client.example.net\r\n", MAIL, RCPT, "DATA\r\n",
               "Subject: t\r\n\r\nbody\r\n.\r\n", "QUIT\r\n"]
COURSE = ["greeted -> helo", "helo -> mail", "mail -> rcpt", "rcpt -> data", "data -> busy",
          "busy -> helo"]


def run_transaction(tc, sluice):
    """One whole transaction on a new connection, ending with QUIT."""
    c = sluice.raw()
    c.expect(220)
    for line, code in zip(TRANSACTION, (250, 250, 250, 354, 250, 221)):
        c.expect(code, line)
    tc.assertTrue(c.closed())


class DebugTrace(SluiceTestCase):
    """server { log_level = "debug" } traces each state change of a session (old -> new); a
    reload back to "info" stops it."""
    tls = False
    server_extra = 'log_level = "debug",'

    def transaction(self):
        run_transaction(self, self.sluice)
        self.sluice.wait_log(r"event=session|\"event\":\"session\"|session .* ended|result=")

    def test_debug_traces_each_state_change_until_reload(self):
        self.transaction()
        for step in COURSE:
            self.sluice.wait_log(r"session 127\.0\.0\.1: " + step)
        offset = len(self.sluice.read_log())
        with open(self.sluice.config_path) as f:
            text = f.read()
        self.sluice.write_config(text.replace('log_level = "debug"', 'log_level = "info"'))
        self.sluice.signal(signal.SIGHUP)
        self.sluice.wait_log("config reloaded", start=offset)
        offset = len(self.sluice.read_log())
        self.transaction()
        self.sluice.stop()
        self.assertNotIn(" -> ", self.sluice.read_log()[offset:])


class DefaultLogLevel(SluiceTestCase):
    tls = False

    def test_info_by_default_no_trace(self):
        run_transaction(self, self.sluice)
        self.sluice.stop()
        log = self.sluice.read_log()
        self.assertIn("qid=", log)
        self.assertNotIn("greeted -> helo", log)


if __name__ == "__main__":
    unittest.main()
