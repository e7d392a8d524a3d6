"""Running it for real: `cmake --install` puts the binary, man pages, examples and the systemd
unit in standard places; the man pages render cleanly and document every config key, action
and condition; the unit passes systemd-analyze; sluice speaks the sd_notify protocol."""
import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import unittest

from sluice_harness import BIN, SOURCE_DIR, Sluice

SRC = os.path.abspath(SOURCE_DIR)
BUILD = os.path.dirname(os.path.abspath(BIN))


class Install(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root = tempfile.mkdtemp(prefix="sluice-install-")
        env = dict(os.environ, DESTDIR=cls.root)
        r = subprocess.run(["cmake", "--install", BUILD, "--prefix", "/usr"], env=env,
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise AssertionError(r.stdout + r.stderr)

    def path(self, p):
        return os.path.join(self.root, p.lstrip("/"))

    def test_standard_paths(self):
        for p in ("/usr/sbin/sluice", "/usr/share/man/man8/sluice.8",
                  "/usr/share/man/man5/sluice.lua.5", "/usr/lib/systemd/system/sluice.service",
                  "/usr/share/doc/sluice/examples/quickstart.lua",
                  "/usr/share/doc/sluice/examples/dmarc_bounce.lua",
                  "/usr/share/doc/sluice/examples/prometheus/alerts.yml",
                  "/usr/share/doc/sluice/examples/grafana/sluice.json",
                  "/usr/share/doc/sluice/multi-node.md", "/usr/share/doc/sluice/README.md"):
            self.assertTrue(os.path.exists(self.path(p)), p)
        r = subprocess.run([self.path("/usr/sbin/sluice"), "--version"], capture_output=True,
                           text=True)
        self.assertEqual(r.returncode, 0)

    def test_man_pages_render_without_warnings(self):
        for page in ("man8/sluice.8", "man5/sluice.lua.5"):
            r = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z",
                                self.path("/usr/share/man/" + page)],
                               capture_output=True, text=True)
            self.assertEqual((r.returncode, r.stderr), (0, ""), page)

    def test_config_reference_covers_every_key_action_and_condition(self):
        with open(os.path.join(SRC, "docs", "man", "sluice.lua.5")) as f:
            page = f.read().replace("\\(dq", '"').replace("\\-", "-")
        words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", page))
        wanted = set()
        for src in glob.glob(os.path.join(SRC, "config", "*.c")) + \
                glob.glob(os.path.join(SRC, "actions", "*.c")) + \
                glob.glob(os.path.join(SRC, "rules", "*.c")):
            with open(src) as f:
                text = f.read()
            for block in re.findall(r"keys\[\]\s*=\s*\{(.*?)\};", text, re.S):
                wanted.update(re.findall(r'"([^"]+)"', block))
            wanted.update(n for n in re.findall(r'\.name = "([a-z_0-9]+)"', text) if n != "dsn")
        with open(os.path.join(SRC, "rules", "conditions.c")) as f:
            fields = re.findall(r'^    \{"([a-z_]+)", &[a-z_]+, holds_', f.read(), re.M)
        self.assertIn("dmarc_policy", fields)  # the condition table's format is understood
        wanted.update(fields)
        missing = sorted(w for w in wanted if w not in words)
        self.assertEqual(missing, [], "sluice.lua(5) does not document these")

    def configured_config_path(self):
        with open(os.path.join(BUILD, "sluice.service")) as f:
            return re.search(r"sluice serve -c (\S+)", f.read()).group(1)

    def test_first_config_installed_once_then_kept(self):
        conf = self.configured_config_path()
        with open(self.path(conf)) as f, open(os.path.join(SRC, "examples",
                                                           "dmarc_bounce.lua")) as g:
            self.assertEqual(f.read(), g.read())
        r = subprocess.run([self.path("/usr/sbin/sluice"), "check", "-c", self.path(conf)],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(self.path(conf), "a") as f:
            f.write("-- edited by the operator\n")
        r = subprocess.run(["cmake", "--install", BUILD, "--prefix", "/usr"],
                           env=dict(os.environ, DESTDIR=self.root), capture_output=True,
                           text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("Kept: " + self.path(conf), r.stdout)
        with open(self.path(conf)) as f:
            self.assertTrue(f.read().endswith("-- edited by the operator\n"))

    def test_default_config_is_the_installed_one(self):
        # Without -c, sluice reads the config make install put in place (named in the error
        # when it is not there, as here: the staged copy is under DESTDIR).
        conf = self.configured_config_path()
        if os.path.exists(conf):
            self.skipTest(conf + " exists on this machine")
        r = subprocess.run([self.path("/usr/sbin/sluice"), "check"], capture_output=True,
                           text=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn(conf, r.stderr)

    def test_paths_follow_the_prefix(self):
        scratch = tempfile.mkdtemp(prefix="sluice-prefix-")
        self.addCleanup(shutil.rmtree, scratch, True)
        r = subprocess.run(["cmake", "-S", SRC, "-B", scratch, "-DCMAKE_INSTALL_PREFIX=/srv/sl"],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(os.path.join(scratch, "man", "sluice.8")) as f:
            self.assertIn("\n.I /srv/sl/etc/sluice/sluice.lua\n", f.read())
        with open(os.path.join(scratch, "man", "sluice.lua.5")) as f:
            page = f.read()
        self.assertIn("\n.B /srv/sl/etc/sluice/sluice.lua\n", page)
        self.assertIn("\n.I /srv/sl/share/doc/sluice/examples/\n", page)
        with open(os.path.join(scratch, "sluice.service")) as f:
            unit = f.read()
        self.assertIn("ExecStart=/srv/sl/sbin/sluice serve -c /srv/sl/etc/sluice/sluice.lua", unit)
        self.assertIn("/srv/sl/share/doc/sluice/examples/dmarc_bounce.lua", unit)
        for text in (page, unit):
            self.assertEqual(re.findall(r"@[A-Z_]+@", text), [])

    @unittest.skipUnless(shutil.which("systemd-analyze"), "systemd-analyze not installed")
    def test_systemd_unit_verifies(self):
        unit = self.path("/usr/lib/systemd/system/sluice.service")
        with open(unit) as f:
            text = f.read()
        self.assertIn("Type=notify", text)
        self.assertIn("NoNewPrivileges=yes", text)
        self.assertIn("AmbientCapabilities=CAP_NET_BIND_SERVICE", text)
        # Point the unit at the staged binary so the check can see it.
        staged = os.path.join(self.root, "sluice-staged.service")
        with open(staged, "w") as f:
            f.write(re.sub(r"/\S*/sbin/sluice", self.path("/usr/sbin/sluice"), text))
        r = subprocess.run(["systemd-analyze", "verify", staged], capture_output=True, text=True)
        problems = [l for l in (r.stdout + r.stderr).splitlines()
                    if l.strip() and "Command 'man " not in l]
        self.assertEqual(problems, [])


class SdNotify(unittest.TestCase):
    def test_ready_reloading_stopping(self):
        d = tempfile.mkdtemp(prefix="sluice-notify-")
        path = os.path.join(d, "notify.sock")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        sock.settimeout(20)
        self.addCleanup(sock.close)
        os.environ["NOTIFY_SOCKET"] = path
        try:
            s = Sluice().start()
        finally:
            del os.environ["NOTIFY_SOCKET"]
        self.assertEqual(sock.recv(100), b"READY=1")
        s.signal(signal.SIGHUP)
        self.assertEqual(sock.recv(100), b"RELOADING=1")
        self.assertEqual(sock.recv(100), b"READY=1")
        s.stop()
        self.assertEqual(sock.recv(100), b"STOPPING=1")


if __name__ == "__main__":
    unittest.main()
