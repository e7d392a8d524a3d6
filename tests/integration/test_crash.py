"""Crash safety: under continuous load from several clients, sluice is killed with SIGKILL at
random moments and restarted, 20 times. Every message that got a 250 must be in its Maildir
exactly once and byte-identical; nothing partial may be visible in new/. Also: a full disk
gives 452 4.3.1 with nothing half-written, and recovers when space returns."""
import os
import random
import re
import smtplib
import subprocess
import threading
import time
import unittest

from sluice_harness import Sluice, read_file, strip_trace

CYCLES = int(os.environ.get("SLUICE_CRASH_CYCLES", "20"))


def body_for(ident):
    # Several lines, a dot-stuffed line, 8-bit bytes: a complete copy is easy to recognise.
    return (b"X-Test-Id: %s\r\nSubject: crash test\r\n\r\n" % ident.encode()
            + b"line of text for %s\r\n" % ident.encode() * 50
            + b".dot line\r\n\xc3\xa9t\xc3\xa9\r\nend %s\r\n" % ident.encode())


class KillNine(unittest.TestCase):
    def test_acknowledged_messages_survive_sigkill(self):
        s = Sluice()
        sent, acked, lock = {}, set(), threading.Lock()
        rng = random.Random(1234)
        counter = [0]

        def client(stop):
            while not stop.is_set():
                try:
                    with smtplib.SMTP("127.0.0.1", s.port, timeout=5) as c:
                        while not stop.is_set():
                            with lock:
                                counter[0] += 1
                                ident = "m%06d" % counter[0]
                                sent[ident] = body_for(ident)
                            c.sendmail("a@example.net", ["user@example.test"], sent[ident])
                            with lock:
                                acked.add(ident)
                except (OSError, smtplib.SMTPException):
                    time.sleep(0.02)  # server down: try again after the restart

        for cycle in range(CYCLES):
            s.start()
            stop = threading.Event()
            threads = [threading.Thread(target=client, args=(stop,)) for _ in range(4)]
            for t in threads:
                t.start()
            time.sleep(rng.uniform(0.2, 0.7))
            s.kill9()
            stop.set()
            for t in threads:
                t.join(10)
        s.start()
        s.stop()

        found = {}
        for f in s.maildir("example.test", "user"):
            data = read_file(f)
            m = re.search(rb"X-Test-Id: (m\d+)", data)
            self.assertIsNotNone(m, "a file in new/ without a test id: %s" % f)
            ident = m.group(1).decode()
            found.setdefault(ident, []).append(data)
        lost = sorted(i for i in acked if i not in found)
        dup = sorted(i for i, v in found.items() if len(v) > 1)
        print("\nkill -9 x%d: sent %d, acknowledged %d, found %d, lost %d, duplicated %d"
              % (CYCLES, len(sent), len(acked), len(found), len(lost), len(dup)))
        self.assertGreater(len(acked), CYCLES)
        self.assertEqual(lost, [])
        self.assertEqual(dup, [])
        for ident, copies in found.items():
            self.assertEqual(strip_trace(copies[0]), sent[ident], "copy of %s differs" % ident)


class FullDisk(unittest.TestCase):
    def setUp(self):
        self.s = Sluice()
        self.mail = os.path.join(self.s.dir, "var", "mail")
        os.makedirs(self.mail)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", self.mail],
                           capture_output=True)
        if r.returncode != 0:
            self.skipTest("cannot mount a small tmpfs here: %s" % r.stderr.decode().strip())
        self.addCleanup(subprocess.run, ["umount", "-l", self.mail])
        self.s.start()
        self.addCleanup(self.s.stop)

    def send(self, size):
        body = b"Subject: big\r\n\r\n" + (b"y" * 78 + b"\r\n") * (size // 80)
        with smtplib.SMTP("127.0.0.1", self.s.port, timeout=10) as c:
            c.ehlo("client.example.net")
            c.mail("a@example.net")
            c.rcpt("user@example.test")
            return c.data(body)

    def test_452_when_full_and_recovery(self):
        replies = [self.send(60000) for _ in range(6)]
        codes = [r[0] for r in replies]
        self.assertIn(452, codes, replies)
        self.assertEqual(replies[codes.index(452)][1][:5], b"4.3.1")
        accepted = codes.count(250)
        new = self.s.maildir("example.test", "user")
        self.assertEqual(len(new), accepted)
        for f in new:  # every visible copy is complete
            self.assertTrue(read_file(f).endswith(b"y" * 78 + b"\r\n"))
        self.assertEqual(self.s.maildir("example.test", "user", "tmp"), [])
        for f in new:
            os.unlink(f)
        self.assertEqual(self.send(60000)[0], 250)


if __name__ == "__main__":
    unittest.main()
