"""CHUNKING / BDAT (RFC 3030): chunks are read by their announced size, never searched for a
command or an end of data; a refused chunk is still read (and discarded) so that its octets are
never taken as commands; the content gets DATA's line checks and the LAST chunk DATA's final
reply."""
import unittest

from sluice_harness import SluiceTestCase, read_file, strip_trace

MAIL = b"MAIL FROM:<alice@example.net>\r\n"
RCPT = b"RCPT TO:<user@example.test>\r\n"
MESSAGE = (b"From: alice@example.net\r\nTo: user@example.test\r\nSubject: chunks\r\n\r\n"
           b".a line starting with a dot stays as it is\r\n..two dots too\r\n.\r\nend\r\n")


def bdat(data, last=False):
    """One BDAT command with its chunk."""
    return b"BDAT %d%s\r\n" % (len(data), b" LAST" if last else b"") + data


class BdatCase(SluiceTestCase):
    tls = False

    def transaction(self, c):
        c.expect(250, MAIL)
        c.expect(250, RCPT)

    def stored(self, n=1):
        files = self.sluice.all_stored()
        self.assertEqual(len(files), n, files)
        return [strip_trace(read_file(f)) for f in files]

    def expect_chunk(self, c, n):
        self.assertEqual(c.reply(), (250, "250 2.0.0 %d octets received" % n))


class Chunks(BdatCase):
    def test_ehlo_advertises_chunking_not_binarymime(self):
        c = self.sluice.raw()
        c.expect(220)
        text = c.expect(250, "EHLO client.example.net\r\n")
        self.assertIn("250-CHUNKING\n", text)
        self.assertNotIn("BINARYMIME", text)
        c.send(b"MAIL FROM:<a@example.net> BODY=BINARYMIME\r\n")
        code, text = c.reply()
        self.assertEqual(code, 501, text)

    def test_one_chunk_last_is_stored_exactly(self):
        c = self.session()
        self.transaction(c)
        c.send(b"BDAT %d LAST\r\n" % len(MESSAGE) + MESSAGE)
        text = c.expect(250)
        self.assertIn("queued as", text)
        self.assertEqual(self.stored(), [MESSAGE])
        data = read_file(self.sluice.all_stored()[0])
        self.assertIn(b"with ESMTP", data)
        c.expect(221, "QUIT\r\n")

    def test_pipelined_chunks_split_awkwardly(self):
        """Chunks cut inside CRLF and inside a line, all pipelined with the next transaction,
        and the wire sent one byte at a time: each chunk is taken by its size alone."""
        c = self.session()
        parts = [MESSAGE[:1], MESSAGE[1:20], MESSAGE[20:64], MESSAGE[64:127], MESSAGE[127:]]
        self.assertEqual(MESSAGE[63:65], b"\r\n")  # a cut between CR and LF
        self.assertEqual(MESSAGE[126:130], b"\n.\r\n")  # the next chunk starts with ".\r\n"
        wire = MAIL + RCPT
        for i, p in enumerate(parts):
            last = b" LAST" if i == len(parts) - 1 else b""
            wire += b"BDAT %d%s\r\n" % (len(p), last) + p
        second = b"Subject: second\r\n\r\nx\r\n"
        wire += MAIL + RCPT + b"BDAT %d LAST\r\n" % len(second) + second + b"QUIT\r\n"
        for i in range(len(wire)):
            c.send(wire[i:i + 1])
        c.expect(250)
        c.expect(250)
        for p in parts[:-1]:
            self.expect_chunk(c, len(p))
        self.assertIn("queued as", c.expect(250))
        c.expect(250)
        c.expect(250)
        self.assertIn("queued as", c.expect(250))
        c.expect(221)
        self.assertEqual(sorted(self.stored(2)), sorted([MESSAGE, second]))

    def test_bdat_0_last(self):
        c = self.session()
        self.transaction(c)
        c.send(bdat(b"Subject: empty last chunk\r\n\r\nbody\r\n\r\n\r\n"))
        self.expect_chunk(c, len(b"Subject: empty last chunk\r\n\r\nbody\r\n\r\n\r\n"))
        self.assertIn("queued as", c.expect(250, b"BDAT 0 LAST\r\n"))
        self.assertEqual(self.stored(), [b"Subject: empty last chunk\r\n\r\nbody\r\n\r\n\r\n"])

    def test_last_line_without_crlf_gets_one(self):
        c = self.session()
        self.transaction(c)
        c.send(bdat(b"Subject: s\r\n\r\nend", last=True))
        c.expect(250)
        self.assertEqual(self.stored(), [b"Subject: s\r\n\r\nend\r\n"])

    def test_smuggling_payload_inside_a_chunk_is_content(self):
        payload = (b"Subject: smuggle\r\n\r\nfirst\r\n.\r\nMAIL FROM:<ceo@example.test>\r\n"
                   b"RCPT TO:<user@example.test>\r\nDATA\r\nSubject: smuggled\r\n\r\nwire it\r\n"
                   b".\r\n")
        c = self.session()
        self.transaction(c)
        c.send(b"BDAT %d LAST\r\n" % len(payload) + payload + b"QUIT\r\n")
        self.assertIn("queued as", c.expect(250))
        c.expect(221)  # the very next reply: nothing inside the chunk ran as a command
        self.assertEqual(self.stored(), [payload])

    def test_data_after_bdat_is_refused(self):
        c = self.session()
        self.transaction(c)
        c.send(bdat(b"abc"))
        self.expect_chunk(c, 3)
        c.expect(503, b"DATA\r\n")
        # The transaction goes on by BDAT.
        c.send(bdat(b"\r\nSubject: x\r\n", last=True))
        c.expect(250)
        self.assertEqual(self.stored(), [b"abc\r\nSubject: x\r\n"])

    def test_rset_between_chunks_discards_the_message(self):
        c = self.session()
        self.transaction(c)
        c.send(bdat(b"Subject: gone\r\n"))
        self.expect_chunk(c, len(b"Subject: gone\r\n"))
        c.expect(250, b"RSET\r\n")
        c.send(bdat(b"hello", last=True))
        self.assertEqual(c.reply()[0], 503)
        c.expect(221, b"QUIT\r\n")
        self.assertEqual(self.sluice.all_stored(), [])


class Refusals(BdatCase):
    def test_bdat_before_mail_consumes_its_octets(self):
        c = self.session()
        inner = b"MAIL FROM:<ceo@example.test>\r\nRCPT TO:<user@example.test>\r\n"
        c.send(b"BDAT %d LAST\r\n" % len(inner) + inner + b"NOOP\r\n")
        self.assertEqual(c.reply(), (503, "503 5.5.1 Error: need MAIL command"))
        self.assertEqual(c.reply(), (250, "250 2.0.0 Ok"))  # the NOOP, not the inner MAIL
        c.expect(250, MAIL)
        c.expect(250, RCPT)

    def test_bdat_without_recipient(self):
        c = self.session()
        c.expect(250, MAIL)
        c.send(bdat(b"RSET\r\n", last=True) + b"NOOP\r\n")
        self.assertEqual(c.reply(), (554, "554 5.5.1 Error: no valid recipients"))
        c.expect(250)  # NOOP
        c.expect(503, MAIL)  # the transaction still stands: RSET was content

    def test_bad_sizes_read_nothing(self):
        c = self.session()
        self.transaction(c)
        for bad in (b"BDAT\r\n", b"BDAT x\r\n", b"BDAT -1\r\n", b"BDAT +1\r\n", b"BDAT 1 FIRST\r\n",
                    b"BDAT 99999999999999999999999\r\n", b"BDAT 26214401\r\n"):
            c.send(bad)
            code, text = c.reply()
            self.assertEqual(code, 501, (bad, text))
            self.assertIn("5.5.4", text)
        # Nothing was read: the next line is a command again, and the transaction stands.
        c.send(bdat(b"Subject: a\r\n", last=True))
        c.expect(250)
        self.assertEqual(self.stored(), [b"Subject: a\r\n"])


class SizeLimit(BdatCase):
    server_extra = "max_message_size = 4096,"

    def test_over_size_total_552_and_the_rest_is_read(self):
        c = self.session()
        self.transaction(c)
        line = b"x" * 98 + b"\r\n"
        first = line * 30  # 3000
        second = (b"MAIL FROM:<ceo@example.test>\r\n" + line * 20)[:2000]  # 5000 in all
        third = b"NOOP\r\n" * 10
        c.send(b"BDAT %d\r\n" % len(first) + first)
        self.expect_chunk(c, len(first))
        # Pipelined: the refused chunk, a chunk already sent after it, then a command.
        c.send(b"BDAT %d\r\n" % len(second) + second[:1000])
        c.send(second[1000:] + b"BDAT %d LAST\r\n" % len(third) + third + b"NOOP\r\n")
        self.assertEqual(c.reply(), (552, "552 5.3.4 Error: message exceeds the size limit"))
        self.assertEqual(c.reply(), (503, "503 5.5.1 Error: need MAIL command"))
        self.assertEqual(c.reply(), (250, "250 2.0.0 Ok"))
        # The session goes on correctly.
        self.transaction(c)
        c.send(bdat(b"Subject: a\r\n", last=True))
        c.expect(250)
        self.assertEqual(self.stored(), [b"Subject: a\r\n"])

    def test_exactly_the_limit_is_accepted(self):
        c = self.session()
        self.transaction(c)
        body = b"Subject: a\r\n\r\n" + (b"y" * 96 + b"\r\n") * 40
        body += b"z" * (4096 - len(body) - 2) + b"\r\n"
        self.assertEqual(len(body), 4096)
        c.send(b"BDAT %d LAST\r\n" % len(body) + body)
        c.expect(250)
        self.assertEqual(self.stored(), [body])


class LineDefects(BdatCase):
    def test_bare_lf_refused_as_data_would(self):
        c = self.session()
        self.transaction(c)
        c.send(bdat(b"Subject: a\n\nbody"))
        self.expect_chunk(c, len(b"Subject: a\n\nbody"))  # defects are judged at LAST, like DATA at its end
        c.send(bdat(b"\r\n", last=True))
        code, text = c.reply()
        self.assertEqual(code, 550, text)
        self.assertIn("bare <LF>", text)
        self.assertTrue(c.closed())
        self.assertEqual(self.sluice.all_stored(), [])

    def test_bare_cr_at_the_end_refused(self):
        c = self.session()
        self.transaction(c)
        c.send(bdat(b"Subject: a\r\n\r\nb\r", last=True))
        code, text = c.reply()
        self.assertEqual(code, 550, text)
        self.assertIn("bare <CR>", text)
        self.assertEqual(self.sluice.all_stored(), [])

    def test_nul_and_long_line_refused(self):
        c = self.session()
        self.transaction(c)
        c.send(bdat(b"Subject: a\r\n\r\n\x00b\r\n", last=True))
        self.assertEqual(c.reply(), (550, "550 5.6.0 Error: message contains NUL bytes"))
        self.transaction(c)
        long = b"Subject: a\r\n\r\n" + b"l" * 999 + b"\r\n"
        c.send(b"BDAT %d LAST\r\n" % len(long) + long)
        code, text = c.reply()
        self.assertEqual(code, 550, text)
        self.assertIn("longer than 998", text)
        self.assertEqual(self.sluice.all_stored(), [])


class NormalizedLf(BdatCase):
    server_extra = 'bare_newline = "normalize",'

    def test_bare_lf_normalized(self):
        c = self.session()
        self.transaction(c)
        c.send(bdat(b"Subject: a\n\nbody\n.\nx\n", last=True))
        c.expect(250)
        self.assertEqual(self.stored(), [b"Subject: a\r\n\r\nbody\r\n.\r\nx\r\n"])


class ChunkTimeout(BdatCase):
    server_extra = "data_timeout = 2,"

    def test_chunk_that_never_completes(self):
        c = self.session()
        self.transaction(c)
        c.send(b"BDAT 100\r\nSubject: a\r\n")
        code, text = c.reply()
        self.assertEqual(code, 421, text)
        self.assertIn("4.4.2", text)
        self.assertTrue(c.closed())
        self.sluice.wait_log(r"error=\"timeout during BDAT\"")
        self.assertEqual(self.sluice.all_stored(), [])


if __name__ == "__main__":
    unittest.main()
