"""Cases where sluice is known to be wrong, each with its reason: a sluice answer outside what
the RFCs allow fails the fixed-seed test (tests/integration/test_conformance.py) unless an entry
here names its check and one of the case's generator tags. An entry that matches no case fails
the test too, so that a fixed defect's entry is removed with the fix."""

EXPECTED = [
    {"check": "spf", "tag": "spf-macro-%{d2}",
     "reason": "found by this harness: `exists:%{d2}._m.DOMAIN` should expand %{d2} to the "
               "last two labels of the domain (RFC 7208 §7.3) and match; sluice says neutral "
               "where rspamd and mailauth pass. Not yet investigated"},
]
