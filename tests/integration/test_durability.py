"""Durability and lifecycle: a store that cannot write gets 451 4.3.0 with nothing half-written
(also when only the second of two copies fails: two-phase commit), SIGTERM drains sessions, and
JSON logs are one JSON object per line."""
import json
import os
import signal
import ssl
import unittest

from sluice_harness import SluiceTestCase, read_file


def files_below(root, names=("new", "tmp")):
    out = []
    for d, _dirs, files in os.walk(root):
        if os.path.basename(d) in names:
            out += [os.path.join(d, f) for f in files]
    return sorted(out)


class StoreCannotBeCreated(SluiceTestCase):
    def block(self, *parts):
        """Makes var/mail/<parts> a regular file, so no directory can be created below it
        (permission bits would not stop root)."""
        path = os.path.join(self.sluice.dir, "var", "mail", *parts)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write("in the way\n")
        return path

    def send(self, c, subject):
        c.expect(250, "MAIL FROM:<a@example.net>\r\n")
        c.expect(250, "RCPT TO:<user@example.test>\r\n")
        c.expect(354, "DATA\r\n")
        c.send(b"Subject: %s\r\n\r\nbody\r\n.\r\n" % subject)
        return c.reply()

    def test_451_and_nothing_written(self):
        blocker = self.block("example.test")
        c = self.session()
        code, text = self.send(c, b"blocked")
        self.assertEqual(code, 451, text)
        self.assertIn("451 4.3.0", text)
        self.assertEqual(files_below(os.path.join(self.sluice.dir, "var")), [])
        self.sluice.wait_log(r"cannot create maildir")
        # Once the obstacle is gone, the retry is delivered exactly once.
        os.unlink(blocker)
        code, text = self.send(c, b"retry")
        self.assertEqual(code, 250, text)
        self.assertEqual(len(self.sluice.all_stored()), 1)

    def test_one_recipient_failing_fails_the_message(self):
        """Two recipients, only the second one's Maildir is blocked: 451 for the message and
        the first recipient's copy is not visible either (the client retries both)."""
        self.block("example.test", "blocked")
        c = self.session()
        c.expect(250, "MAIL FROM:<a@example.net>\r\n")
        c.expect(250, "RCPT TO:<user@example.test>\r\n")
        c.expect(250, "RCPT TO:<blocked@example.test>\r\n")
        c.expect(354, "DATA\r\n")
        self.assertIn("451 4.3.0", c.expect(451, "Subject: both\r\n\r\nbody\r\n.\r\n"))
        self.assertEqual(files_below(os.path.join(self.sluice.dir, "var")), [])


class SecondCopyFails(SluiceTestCase):
    rules = """
rule_set "main" {
  rule {
    name = "two-copies",
    actions = {
      store { maildir = "var/mail/first/{user}" },
      store { maildir = "var/mail/second/{user}" },
    },
  },
}
"""

    def test_first_copy_not_visible_when_second_fails(self):
        blocker = os.path.join(self.sluice.dir, "var", "mail", "second")
        os.makedirs(os.path.dirname(blocker), exist_ok=True)
        with open(blocker, "w") as f:
            f.write("in the way\n")
        c = self.session()
        c.expect(250, "MAIL FROM:<a@example.net>\r\n")
        c.expect(250, "RCPT TO:<user@example.test>\r\n")
        c.expect(354, "DATA\r\n")
        self.assertIn("451 4.3.0", c.expect(451, "Subject: two\r\n\r\nbody\r\n.\r\n"))
        # Neither in new/ nor left behind in tmp/.
        self.assertEqual(self.sluice.all_stored(), [])
        self.assertTrue(os.path.isdir(os.path.join(self.sluice.dir, "var/mail/first/user/new")))
        os.unlink(blocker)
        c.expect(250, "MAIL FROM:<a@example.net>\r\n")
        c.expect(250, "RCPT TO:<user@example.test>\r\n")
        c.expect(354, "DATA\r\n")
        c.expect(250, "Subject: two\r\n\r\nagain\r\n.\r\n")
        stored = self.sluice.all_stored()
        self.assertEqual(len(stored), 2)
        self.assertEqual(sorted(p.split("/var/mail/")[1].split("/")[0] for p in stored),
                         ["first", "second"])
        self.assertTrue(all("/new/" in p for p in stored))


class Shutdown(SluiceTestCase):
    def assert_clean_exit(self):
        rc = self.sluice.proc.wait(timeout=40)
        self.assertEqual(rc, 0, self.sluice.read_log())
        log = self.sluice.read_log()
        self.assertNotIn("AddressSanitizer", log)
        self.assertNotIn("runtime error:", log)

    def test_idle_session_gets_421_and_process_exits_0(self):
        c = self.session()
        self.sluice.signal(signal.SIGTERM)
        self.assertIn("421 4.3.2", c.expect(421))
        self.assertTrue(c.closed())
        self.assert_clean_exit()

    def test_idle_tls_session_gets_421(self):
        c = self.session()
        c.expect(220, "STARTTLS\r\n")
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        c.sock = ctx.wrap_socket(c.sock)
        c.expect(250, "EHLO client.example.net\r\n")
        self.sluice.signal(signal.SIGTERM)
        self.assertIn("421 4.3.2", c.expect(421))
        self.assertTrue(c.closed())
        self.assert_clean_exit()

    def test_session_mid_data_finishes_its_message(self):
        c = self.session()
        idle = self.session()
        c.expect(250, "MAIL FROM:<a@example.net>\r\n")
        c.expect(250, "RCPT TO:<user@example.test>\r\n")
        c.expect(354, "DATA\r\n")
        c.send(b"Subject: in flight\r\n\r\nfirst half, ")
        start = len(self.sluice.read_log())
        self.sluice.signal(signal.SIGTERM)
        self.sluice.wait_log(r"finishing \d+ sessions", start=start)
        self.assertIn("421 4.3.2", idle.expect(421))
        c.send(b"second half\r\n.\r\n")
        self.assertIn("250 2.0.0", c.expect(250))
        self.assertIn("421 4.3.2", c.expect(421))
        self.assertTrue(c.closed())
        self.assert_clean_exit()
        stored = self.sluice.all_stored()
        self.assertEqual(len(stored), 1)
        self.assertTrue(read_file(stored[0]).endswith(b"first half, second half\r\n"))

    def test_session_mid_transaction_may_finish_it(self):
        c = self.session()
        c.expect(250, "MAIL FROM:<a@example.net>\r\n")
        start = len(self.sluice.read_log())
        self.sluice.signal(signal.SIGTERM)
        self.sluice.wait_log(r"finishing \d+ sessions", start=start)
        c.expect(250, "RCPT TO:<user@example.test>\r\n")
        c.expect(354, "DATA\r\n")
        c.expect(250, "Subject: late\r\n\r\nlate\r\n.\r\n")
        self.assertIn("421 4.3.2", c.expect(421))
        self.assertTrue(c.closed())
        self.assert_clean_exit()
        self.assertEqual(len(self.sluice.all_stored()), 1)

    def test_session_that_abandons_its_transaction_is_closed(self):
        c = self.session()
        c.expect(250, "MAIL FROM:<a@example.net>\r\n")
        start = len(self.sluice.read_log())
        self.sluice.signal(signal.SIGTERM)
        self.sluice.wait_log(r"finishing \d+ sessions", start=start)
        c.expect(250, "RSET\r\n")
        self.assertIn("421 4.3.2", c.expect(421))
        self.assertTrue(c.closed())
        self.assert_clean_exit()

    def test_refused_message_ends_the_transaction_too(self):
        c = self.session()
        c.expect(250, "MAIL FROM:<a@example.net>\r\n")
        c.expect(250, "RCPT TO:<user@example.test>\r\n")
        c.expect(354, "DATA\r\n")
        start = len(self.sluice.read_log())
        self.sluice.signal(signal.SIGTERM)
        self.sluice.wait_log(r"finishing \d+ sessions", start=start)
        self.assertIn("550 5.6.0", c.expect(550, b"Subject: nul\r\n\r\n\x00\r\n.\r\n"))
        self.assertIn("421 4.3.2", c.expect(421))
        self.assertTrue(c.closed())
        self.assert_clean_exit()
        self.assertEqual(self.sluice.all_stored(), [])


class JsonLog(SluiceTestCase):
    server_extra = 'log_format = "json",'

    def test_every_line_is_json(self):
        c = self.session()
        c.expect(250, "MAIL FROM:<a@example.net>\r\n")
        c.expect(250, "RCPT TO:<user@example.test>\r\n")
        c.expect(250, "RCPT TO:<other+tag@example.test>\r\n")
        c.expect(354, "DATA\r\n")
        c.expect(250, "Subject: json\r\n\r\nbody\r\n.\r\n")
        c.expect(250, 'MAIL FROM:<"odd \\"quoted\\""@example.net>\r\n')
        c.expect(250, "RCPT TO:<user@example.test>\r\n")
        c.expect(354, "DATA\r\n")
        c.expect(550, "Subject: nul\r\n\r\n\x00\r\n.\r\n")
        c.expect(221, "QUIT\r\n")
        self.assertTrue(c.closed())
        self.sluice.wait_log(r'"event":"session"')
        self.sluice.stop()
        lines = [l for l in self.sluice.read_log().splitlines() if l.strip()]
        events = []
        for line in lines:
            try:
                events.append(json.loads(line))
            except ValueError:
                self.fail("not a JSON line: %r" % line)
        for e in events:
            self.assertIn("ts", e)
            self.assertIn("level", e)
            self.assertIn("event", e)
        msgs = [e for e in events if e["event"] == "message"]
        self.assertEqual(len(msgs), 2, msgs)
        ok, refused = msgs
        for m in msgs:
            for key in ("qid", "client", "from", "to", "result"):
                self.assertIn(key, m)
            self.assertEqual(m["client"], "127.0.0.1")
        self.assertEqual(ok["from"], "a@example.net")
        self.assertEqual(ok["to"], ["user@example.test", "other+tag@example.test"])
        self.assertEqual(ok["size"], len(b"Subject: json\r\n\r\nbody\r\n"))
        self.assertTrue(ok["result"].startswith("250 2.0.0"), ok)
        self.assertEqual(refused["from"], '"odd \\"quoted\\""@example.net')
        self.assertTrue(refused["result"].startswith("550 5.6.0"), refused)
        sessions = [e for e in events if e["event"] == "session"]
        self.assertEqual(len(sessions), 1)
        self.assertEqual(sessions[0]["client"], "127.0.0.1")
        self.assertEqual(sessions[0]["helo"], "client.example.net")


if __name__ == "__main__":
    unittest.main()
