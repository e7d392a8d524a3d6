"""The s3 action against a real S3-compatible server: s3rver from the npm registry (installed
by `make test` into build-tools/s3rver), which checks SigV4 signatures."""
import glob
import os
import smtplib
import socket
import subprocess
import tempfile
import time
import unittest

from sluice_harness import SOURCE_DIR, Sluice, free_port
from test_config import assert_action_errors

S3RVER = os.environ.get("SLUICE_S3RVER") or os.path.join(
    SOURCE_DIR, "build-tools", "s3rver", "node_modules", ".bin", "s3rver")

MSG = b"From: a@example.net\r\nSubject: to the bucket\r\n\r\nstored in S3\r\n"


def rules(port, key_env="S3_KEY"):
    return """
rule_set "main" {
  rule { name = "archive", actions = {
    s3 { endpoint = "http://127.0.0.1:%d", bucket = "mail", prefix = "inbound/",
         region = "us-east-1", access_key_env = "%s", secret_key_env = "S3_SECRET" },
  } },
}
""" % (port, key_env)


@unittest.skipUnless(os.path.exists(S3RVER), "s3rver is not installed (make test-deps)")
class S3(unittest.TestCase):
    def setUp(self):
        self.port = free_port()
        self.data = tempfile.mkdtemp(prefix="s3rver-")
        self.proc = subprocess.Popen([S3RVER, "-d", self.data, "-a", "127.0.0.1", "-p",
                                      str(self.port), "--configure-bucket", "mail", "-s"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(self.stop_s3rver)
        deadline = time.time() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline or self.proc.poll() is not None:
                    self.fail("s3rver did not start")
                time.sleep(0.1)
        os.environ["S3_KEY"] = "S3RVER"
        os.environ["S3_SECRET"] = "S3RVER"
        os.environ["S3_UNKNOWN_KEY"] = "NOT-A-KEY"

    def stop_s3rver(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)

    def objects(self):
        return glob.glob(os.path.join(self.data, "mail", "inbound", "*._S3rver_object"))

    def send(self, s):
        with smtplib.SMTP("127.0.0.1", s.port, timeout=10) as c:
            c.sendmail("a@example.net", ["user@example.test"], MSG)

    def test_message_put_to_the_bucket(self):
        s = Sluice(rules=rules(self.port), server_extra="retry_initial_ms = 100,").start()
        self.addCleanup(s.stop)
        self.send(s)
        s.wait_log(r"action=s3 attempts=1 outcome=delivered")
        objs = self.objects()
        self.assertEqual(len(objs), 1)
        qid = os.path.basename(objs[0]).split(".")[0]
        with open(objs[0], "rb") as f:
            data = f.read()
        self.assertTrue(data.startswith(b"Return-Path: <a@example.net>\r\nReceived: from "))
        self.assertIn(b"\tid %s; " % qid.encode(), data)
        self.assertTrue(data.endswith(MSG))

    def test_unknown_key_is_refused_and_not_retried(self):
        # s3rver checks the key id but (3.7.1) not the signature of a PUT: the signing itself is
        # exercised against it only as far as it checks.
        s = Sluice(rules=rules(self.port, "S3_UNKNOWN_KEY"), server_extra="retry_initial_ms = 100,")
        s.start()
        self.addCleanup(s.stop)
        self.send(s)
        s.wait_log(r"action=s3 attempts=1 outcome=rejected error=\"PUT \S+: HTTP 403 .*"
                   r"InvalidAccessKeyId")
        self.assertEqual(self.objects(), [])

    def test_config_errors(self):
        assert_action_errors(self, (
            ('s3 { endpoint = "ftp://x", bucket = "mail", access_key_env = "A", '
             'secret_key_env = "B" }', "endpoint must start with http"),
            ('s3 { endpoint = "http://x", bucket = "Bad_Bucket", access_key_env = "A", '
             'secret_key_env = "B" }', "not a valid S3 bucket name"),
            ('s3 { endpoint = "http://x", bucket = "mail" }', "missing required field")))


if __name__ == "__main__":
    unittest.main()
