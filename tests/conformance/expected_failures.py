"""Cases where sluice is known to be wrong, each with its reason: a sluice answer outside what
the RFCs allow fails the fixed-seed test (tests/integration/test_conformance.py) unless an entry
here names its check and one of the case's generator tags. An entry that matches no case fails
the test too, so that a fixed defect's entry is removed with the fix."""

EXPECTED = []
