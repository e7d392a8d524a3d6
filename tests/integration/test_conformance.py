"""The differential conformance harness (tests/conformance/, `make conformance`) on a fixed seed
and a few hundred cases: sluice, rspamd and mailauth judge the same generated SPF/DKIM/DMARC
situations through one nsd. Fails when sluice gives an answer the RFCs do not allow (the
generator's evaluators decide) on a case not listed, with its reason, in
tests/conformance/expected_failures.py, or when a listed entry no longer matches any case."""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "conformance"))

import run  # noqa: E402
from scanners import RSPAMD  # noqa: E402

SEED = 20261207
CASES = 300


@unittest.skipUnless(RSPAMD, "rspamd is not installed (make test-deps)")
@unittest.skipUnless(os.path.exists(os.path.join(run.MAILAUTH_DIR, "node_modules", "mailauth")),
                     "mailauth is not installed (make test-deps)")
class FixedSeed(unittest.TestCase):
    def test_sluice_is_right_where_an_rfc_decides(self):
        report = run.run(SEED, CASES, log=lambda s: None)
        print("\n" + run.format_report(SEED, report, report["elapsed"], full=False))
        for check in run.CHECKS:  # every case was judged by all three
            for who in ("sluice", "rspamd", "mailauth"):
                broken = [c for c, a in report["answers"][who].items()
                          if a[check] in ("missing", "error")]
                self.assertEqual(broken, [], (who, check))
        unexpected, stale = run.classify_wrong(report)
        self.assertEqual(["%s %s: sluice %s, RFC allows %s (%s)" % (
            check, row["case"], row["sluice"], "/".join(row["allowed"]), "; ".join(row["why"]))
            for check, row in unexpected], [])
        self.assertEqual(stale, [], "expected failures that matched no case: remove them")


if __name__ == "__main__":
    unittest.main()
