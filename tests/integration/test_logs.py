"""Logs that follow a session (issue 23): a connect line, one session id on every line of the
session and its message, the refused MAIL and RCPT with codes and reasons, the message line with
Message-ID, Maildir paths and job ids, the job line with the qid, the TLS failure reason, and
JSON lines with typed fields. Real SMTP (with STARTTLS) against a real sluice."""
import json
import os
import re
import smtplib
import unittest

from sluice_harness import Sluice, tls_client_context, wait_for
from webhook_sink import WebhookSink


def rules(url):
    return """
rule_set "main" {
  rule { name = "keep", recipients = { "example.test" }, actions = {
    store { maildir = "var/mail/{domain}/{user}" },
    store { maildir = "var/archive" },
    webhook { url = "%s" },
  } },
}
""" % url


MSG = (b"From: Alice <alice@example.net>\r\nTo: user@example.test\r\nSubject: logs\r\n"
       b"Message-ID: <log-1@example.net>\r\n\r\nbody\r\n")


def one_session(port, msg=MSG):
    """EHLO, STARTTLS, a refused MAIL (SIZE too big), an accepted MAIL, a refused RCPT (unknown
    domain), an accepted RCPT, DATA, QUIT; returns the server's reply to DATA."""
    c = smtplib.SMTP("127.0.0.1", port, timeout=10)
    c.ehlo("client.example.net")
    c.starttls(context=tls_client_context())
    c.ehlo("client.example.net")
    code, _ = c.docmd("MAIL FROM:<alice@example.net> SIZE=999999999999")
    assert code == 552, code
    code, _ = c.docmd("MAIL FROM:<alice@example.net>")
    assert code == 250, code
    code, _ = c.docmd("RCPT TO:<bob@elsewhere.test>")
    assert code == 550, code
    code, _ = c.docmd("RCPT TO:<user@example.test>")
    assert code == 250, code
    code, _ = c.data(msg)
    c.quit()
    return code


class Plain(unittest.TestCase):
    json = False

    def setUp(self):
        self.sink = WebhookSink().start()
        self.addCleanup(self.sink.stop)
        extra = 'retry_initial_ms = 200,' + (' log_format = "json",' if self.json else "")
        self.s = Sluice(rules=rules(self.sink.url), server_extra=extra).start()
        self.addCleanup(self.s.stop)

    def session_lines(self):
        """Runs one_session, waits for its session and job lines; returns them."""
        self.assertEqual(one_session(self.s.port), 250)
        self.assertTrue(wait_for(lambda: len(self.sink.requests) == 1), self.s.read_log())
        self.s.wait_log(r"outcome=delivered|\"outcome\":\"delivered\"")
        self.s.wait_log(r"end=quit|\"end\":\"quit\"")
        return self.s.read_log().splitlines()

    def test_every_line_of_the_session_carries_its_id(self):
        lines = self.session_lines()
        connect = [l for l in lines if " info connect " in l]
        self.assertEqual(len(connect), 1, lines)
        m = re.search(r" connect session=(S[0-9A-F]+) client=127\.0\.0\.1 port=(\d+) "
                      r"listener=127\.0\.0\.1:%d proxy_protocol=false$" % self.s.port, connect[0])
        self.assertIsNotNone(m, connect[0])
        sid = m.group(1)
        mine = [l for l in lines if "session=%s " % sid in l or l.endswith("session=" + sid)]
        events = [l.split()[2] for l in mine]
        for e in ("connect", "tls", "mail_refused", "rcpt_refused", "message", "session"):
            self.assertIn(e, events, mine)
        # Nothing of the session is logged without its id (the job line has the qid instead).
        for l in lines:
            if re.search(r" (connect|tls|mail_refused|rcpt_refused|message|session) ", l):
                self.assertIn("session=" + sid, l)

        tls = [l for l in mine if l.split()[2] == "tls"][0]
        self.assertRegex(tls, r"result=ok version=TLSv1\.[23] cipher=\S+")
        mail = [l for l in mine if l.split()[2] == "mail_refused"][0]
        self.assertRegex(mail, r"from=alice@example\.net code=552 status=5\.3\.4 reason=size "
                               r"reply=\"552 5\.3\.4 Message size exceeds fixed limit\"")
        rcpt = [l for l in mine if l.split()[2] == "rcpt_refused"][0]
        self.assertRegex(rcpt, r"qid=\S+ client=127\.0\.0\.1 rcpt=bob@elsewhere\.test code=550 "
                               r"status=5\.7\.1 reason=relay_denied reply=\"550 5\.7\.1 ")

        msg = [l for l in mine if l.split()[2] == "message"][0]
        qid = re.search(r"message qid=(\S+) ", msg).group(1)
        self.assertIn(" session=%s msgid=<log-1@example.net> stored=" % sid, msg)
        self.assertIn(" size=%d " % len(MSG), msg)
        self.assertIn(" to=user@example.test ", msg)
        stored = re.search(r" stored=\"([^\"]+)\"", msg).group(1).split(" ")
        self.assertEqual(len(stored), 2, msg)
        paths = sorted(s.split(":", 1)[1] for s in stored)
        self.assertEqual([s.split(":", 1)[0] for s in stored], ["user@example.test"] * 2)
        self.assertTrue(paths[0].startswith("var/archive/new/"), paths)
        self.assertTrue(paths[1].startswith("var/mail/example.test/user/new/"), paths)
        for p in paths:  # the very files in new/
            self.assertTrue(os.path.isfile(os.path.join(self.s.dir, p)), p)
        self.assertRegex(msg, r" jobs=\"?user@example\.test:%s-\d+\"?( |$)" % qid)
        job = re.search(r" jobs=\"?user@example\.test:(%s-\d+)" % qid, msg).group(1)
        self.assertRegex(self.s.read_log(), r"action job=%s qid=%s rule_set=main rule=keep "
                                            r"action=webhook attempts=1 outcome=delivered"
                         % (job, qid))
        end = [l for l in mine if l.split()[2] == "session"][0]
        self.assertRegex(end, r"messages=1 rcpt_accepted=1 rcpt_rejected=1 duration=\d+s "
                              r"end=quit session=%s$" % sid)


class Json(Plain):
    json = True

    def parsed(self):
        return [json.loads(l) for l in self.s.read_log().splitlines() if l.startswith("{")]

    def test_every_line_of_the_session_carries_its_id(self):
        self.session_lines()
        lines = self.parsed()
        connect = [l for l in lines if l["event"] == "connect"]
        self.assertEqual(len(connect), 1, lines)
        c = connect[0]
        sid = c["session"]
        self.assertRegex(sid, r"^S[0-9A-F]+$")
        self.assertIsInstance(c["port"], int)
        self.assertIs(c["proxy_protocol"], False)
        self.assertEqual(c["listener"], "127.0.0.1:%d" % self.s.port)
        by = {}
        for l in lines:
            if l["event"] in ("connect", "tls", "mail_refused", "rcpt_refused", "message",
                              "session"):
                self.assertEqual(l.get("session"), sid, l)
                by[l["event"]] = l
        mail, rcpt = by["mail_refused"], by["rcpt_refused"]
        self.assertEqual((mail["code"], mail["status"], mail["reason"]), (552, "5.3.4", "size"))
        self.assertEqual((rcpt["code"], rcpt["status"], rcpt["reason"], rcpt["rcpt"]),
                         (550, "5.7.1", "relay_denied", "bob@elsewhere.test"))
        m = by["message"]
        self.assertEqual(m["size"], len(MSG))
        self.assertEqual(m["to"], ["user@example.test"])
        self.assertEqual(m["msgid"], "<log-1@example.net>")
        self.assertEqual(m["rules"], ["keep"])
        self.assertIsInstance(m["actions"], list)
        self.assertEqual(len(m["actions"]), 3, m)
        self.assertTrue(all(a.startswith("keep/") for a in m["actions"]), m)
        self.assertEqual(len(m["stored"]), 2, m)
        self.assertEqual(len(m["jobs"]), 1, m)
        job = m["jobs"][0].split(":", 1)[1]
        act = [l for l in lines if l["event"] == "action" and l["job"] == job]
        self.assertEqual(act[0]["qid"], m["qid"])
        self.assertEqual(act[0]["attempts"], 1)
        s = by["session"]
        for k in ("messages", "rcpt_accepted", "rcpt_rejected", "duration"):
            self.assertIsInstance(s[k], int, s)
        self.assertEqual((s["messages"], s["rcpt_accepted"], s["rcpt_rejected"]), (1, 1, 1))

    def test_hostile_message_id_is_bounded_and_escaped(self):
        hostile = b"<" + b"a" * 600 + b"\x01\x1b[31m\"\\\xff" + b"b" * 300 + b">"
        msg = MSG.replace(b"<log-1@example.net>", hostile)
        self.assertEqual(one_session(self.s.port, msg), 250)
        self.s.wait_log(r"\"event\":\"message\"")
        m = [l for l in self.parsed() if l["event"] == "message"][0]
        self.assertLessEqual(len(m["msgid"]), 250)
        self.assertTrue(m["msgid"].startswith("<aaaa"))
        self.assertTrue(m["msgid"].endswith("..."))
        self.assertTrue(all(0x20 <= ord(ch) < 0x7f for ch in m["msgid"]), m["msgid"])


class HostilePlain(unittest.TestCase):
    def test_control_bytes_in_message_id_never_reach_the_line(self):
        s = Sluice().start()
        self.addCleanup(s.stop)
        hostile = b"<x\x01\x1b[2J\x7f\xc3\xa9 \"quoted\"@example.net>"
        msg = MSG.replace(b"<log-1@example.net>", hostile)
        with smtplib.SMTP("127.0.0.1", s.port, timeout=10) as c:
            c.sendmail("alice@example.net", ["user@example.test"], msg)
        line = s.wait_log(r"message qid=[^\n]*").group(0)
        self.assertIn(r'msgid="<x??[2J??? \"quoted\"@example.net>"', line)
        self.assertNotRegex(line, r"[\x00-\x1f\x7f]")


class TlsFailure(unittest.TestCase):
    def test_garbage_after_starttls_logs_the_reason(self):
        s = Sluice().start()
        self.addCleanup(s.stop)
        c = s.raw()
        c.expect(220)
        c.expect(250, "EHLO client.example.net\r\n")
        c.expect(220, "STARTTLS\r\n")
        c.send(b"this is not a TLS client hello\r\n" * 4)
        self.assertTrue(c.closed())
        line = s.wait_log(r"warning tls session=(S[0-9A-F]+) client=127\.0\.0\.1 result=failed "
                          r"reason=error error=\"error:[^\"]+\"")
        s.wait_log(r"session client=.*end=.* session=%s" % line.group(1))

    def test_client_closing_during_the_handshake(self):
        s = Sluice().start()
        self.addCleanup(s.stop)
        c = s.raw()
        c.expect(220)
        c.expect(250, "EHLO client.example.net\r\n")
        c.expect(220, "STARTTLS\r\n")
        c.close()
        s.wait_log(r"warning tls session=S[0-9A-F]+ client=127\.0\.0\.1 result=failed "
                   r"reason=closed error=\"client closed the connection\"")


ONE_USER = """
rule_set "main" {
  rule { name = "one", recipients = { "user@example.test" }, actions = {
    store { maildir = "var/mail/{domain}/{user}" },
  } },
}
"""


class Refusals(unittest.TestCase):
    def test_syntax_and_sequence_refusals(self):
        s = Sluice(tls=False, rules=ONE_USER).start()
        self.addCleanup(s.stop)
        c = s.raw()
        c.expect(220)
        c.expect(503, "MAIL FROM:<a@example.net>\r\n")
        c.expect(250, "EHLO client.example.net\r\n")
        c.expect(501, "MAIL FROM:bad address\r\n")
        c.expect(503, "RCPT TO:<user@example.test>\r\n")
        c.expect(250, "MAIL FROM:<a@example.net>\r\n")
        c.expect(550, "RCPT TO:<nobody@example.test>\r\n")
        c.expect(501, "RCPT TO:no brackets\r\n")
        c.expect(221, "QUIT\r\n")
        s.wait_log(r"end=quit")
        log = s.read_log()
        self.assertRegex(log, r"mail_refused session=\S+ client=127\.0\.0\.1 "
                              r"from=a@example\.net code=503 status=5\.5\.1 reason=bad_sequence")
        self.assertRegex(log, r"mail_refused session=\S+ client=127\.0\.0\.1 code=501 "
                              r"status=5\.1\.7 reason=syntax")
        self.assertRegex(log, r"rcpt_refused session=\S+ client=127\.0\.0\.1 "
                              r"rcpt=user@example\.test code=503 status=5\.5\.1 "
                              r"reason=bad_sequence")
        self.assertRegex(log, r"rcpt_refused session=\S+ qid=\S+ client=127\.0\.0\.1 "
                              r"rcpt=nobody@example\.test code=550 status=5\.1\.1 "
                              r"reason=unknown_user")
        self.assertRegex(log, r"rcpt_refused session=\S+ qid=\S+ client=127\.0\.0\.1 code=501 "
                              r"status=5\.1\.3 reason=syntax")
        self.assertEqual(len(set(re.findall(r"session=(S[0-9A-F]+)", log))), 1, log)


class ClientChange(unittest.TestCase):
    def test_xclient_logs_the_final_address_under_the_same_session(self):
        s = Sluice(tls=False, server_extra='xclient = { "127.0.0.1/32" },').start()
        self.addCleanup(s.stop)
        c = s.raw()
        c.expect(220)
        c.expect(250, "EHLO proxy.example.net\r\n")
        c.expect(220, "XCLIENT ADDR=192.0.2.99 PORT=4242\r\n")
        c.expect(250, "EHLO client.example.net\r\n")
        c.expect(221, "QUIT\r\n")
        s.wait_log(r"end=quit")
        log = s.read_log()
        sid = re.search(r"connect session=(S[0-9A-F]+) client=127\.0\.0\.1 ", log).group(1)
        self.assertRegex(log, r"info log session=%s msg=\"XCLIENT from 127\.0\.0\.1: client is "
                              r"now 192\.0\.2\.99:4242\" client=192\.0\.2\.99 port=4242 "
                              r"via=127\.0\.0\.1\n" % sid)
        self.assertRegex(log, r"info session client=192\.0\.2\.99 .*via=127\.0\.0\.1 .*"
                              r"session=%s\n" % sid)


if __name__ == "__main__":
    unittest.main()
