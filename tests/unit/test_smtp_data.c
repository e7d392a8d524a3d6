/* The DATA reader (receiver/smtp_data.h): only CRLF.CRLF ends the data, dot-unstuffing happens
 * exactly once, every SMTP-smuggling variant is a defect and never an end, and the result does
 * not depend on how the input is split into reads. */
#include "check.h"
#include "core/buf.h"
#include "receiver/smtp_data.h"

#include <stdlib.h>
#include <string.h>

struct result {
    struct buf out;
    size_t consumed;
    int done;
    unsigned defects;
    size_t received;
    const char *verdict;
    int close;
};

/* Feeds in[0..n) to a fresh reader in pieces of `piece` bytes (0: one chunk), the way the
 * session does: stop at the end of data, the rest is not the reader's. */
static void feed(const char *in, size_t n, size_t max_size, size_t piece, struct result *r)
{
    memset(r, 0, sizeof *r);
    struct data_reader dr;
    data_reader_init(&dr, &r->out, max_size, 0);
    size_t off = 0;
    while (off < n && !r->done) {
        size_t len = piece && n - off > piece ? piece : n - off;
        size_t used = data_reader_feed(&dr, in + off, len, &r->done);
        if (used > len || (!r->done && used != len)) {
            CHECK(!"reader consumed a wrong amount");
            break;
        }
        off += used;
    }
    r->consumed = off;
    r->defects = dr.defects;
    r->received = dr.received;
    r->verdict = data_reader_verdict(&dr, &r->close);
}

/* Feeds in two pieces split at pos (pos in 0..n). */
static void feed_split(const char *in, size_t n, size_t max_size, size_t pos, struct result *r)
{
    memset(r, 0, sizeof *r);
    struct data_reader dr;
    data_reader_init(&dr, &r->out, max_size, 0);
    size_t used = data_reader_feed(&dr, in, pos, &r->done);
    r->consumed = used;
    if (!r->done) {
        used = data_reader_feed(&dr, in + pos, n - pos, &r->done);
        r->consumed += used;
    }
    r->defects = dr.defects;
    r->received = dr.received;
    r->verdict = data_reader_verdict(&dr, &r->close);
}

static int same(const struct result *a, const struct result *b)
{
    return a->done == b->done && a->consumed == b->consumed && a->defects == b->defects &&
           a->received == b->received && a->out.len == b->out.len &&
           (a->out.len == 0 || memcmp(a->out.data, b->out.data, a->out.len) == 0) &&
           a->close == b->close &&
           (a->verdict == NULL ? b->verdict == NULL
                               : b->verdict != NULL && strcmp(a->verdict, b->verdict) == 0);
}

/* One chunk, byte by byte and every two-piece split must agree. Returns the one-chunk result
 * in *r (caller frees r->out). */
static void feed_every_way(const char *in, size_t n, size_t max_size, struct result *r)
{
    feed(in, n, max_size, 0, r);
    struct result other;
    feed(in, n, max_size, 1, &other);
    CHECK(same(r, &other));
    buf_free(&other.out);
    int all_splits_agree = 1;
    for (size_t pos = 0; pos <= n; pos++) {
        feed_split(in, n, max_size, pos, &other);
        if (!same(r, &other))
            all_splits_agree = 0;
        buf_free(&other.out);
    }
    CHECK(all_splits_agree);
}

#define S(lit) lit, sizeof lit - 1
#define BIG ((size_t)1 << 20)
/* The reader's output equals a string literal. */
#define CHECK_OUT(r, lit) CHECK_MEM((r).out.data, (r).out.len, lit, sizeof lit - 1)

static void plain_message_and_unstuffing(void)
{
    struct result r;
    feed_every_way(S("Subject: x\r\n\r\nbody\r\n.\r\n"), BIG, &r);
    CHECK(r.done);
    CHECK_INT(r.consumed, sizeof "Subject: x\r\n\r\nbody\r\n.\r\n" - 1);
    CHECK_OUT(r, "Subject: x\r\n\r\nbody\r\n");
    CHECK_INT(r.defects, 0);
    CHECK(r.verdict == NULL);
    buf_free(&r.out);

    /* Exactly one leading dot is removed from each line, never more, never elsewhere. */
    feed_every_way(S("..one\r\n...two\r\n.\tthree\r\na.b\r\n..\r\n. \r\n.\r\n"), BIG, &r);
    CHECK(r.done);
    CHECK_OUT(r, ".one\r\n..two\r\n\tthree\r\na.b\r\n.\r\n \r\n");
    CHECK_INT(r.defects, 0);
    buf_free(&r.out);

    /* An empty message. */
    feed_every_way(S(".\r\n"), BIG, &r);
    CHECK(r.done);
    CHECK_INT(r.consumed, 3);
    CHECK_INT(r.out.len, 0);
    buf_free(&r.out);

    /* 8-bit bytes are content. */
    feed_every_way(S("caf\xc3\xa9 \xff\r\n.\r\n"), BIG, &r);
    CHECK_OUT(r, "caf\xc3\xa9 \xff\r\n");
    CHECK_INT(r.defects, 0);
    buf_free(&r.out);
}

static void end_only_at_crlf_dot_crlf(void)
{
    struct result r;
    /* None of these is an end. */
    static const struct {
        const char *in;
        size_t n;
    } not_end[] = {
        {S("a\r\n.")}, {S("a\r\n.\r")},    {S("a\r\n..\r\n")}, {S("a\r\n. \r\n")},
        {S("a.\r\n")}, {S("a\r\n.a\r\n")}, {S("a\r\n\r\n")},   {S("a\r\n .\r\n")},
    };
    for (size_t i = 0; i < sizeof not_end / sizeof not_end[0]; i++) {
        feed_every_way(not_end[i].in, not_end[i].n, BIG, &r);
        CHECK(!r.done);
        CHECK_INT(r.consumed, not_end[i].n);
        buf_free(&r.out);
    }
    /* Bytes after the end belong to the next command: not consumed, not content. */
    feed_every_way(S("a\r\n.\r\nMAIL FROM:<b@example.net>\r\n"), BIG, &r);
    CHECK(r.done);
    CHECK_INT(r.consumed, sizeof "a\r\n.\r\n" - 1);
    CHECK_OUT(r, "a\r\n");
    buf_free(&r.out);
    /* A bare CR just before a real end: the end stands, the message is still refused. */
    feed_every_way(S("a\r\r\n.\r\nQUIT\r\n"), BIG, &r);
    CHECK(r.done);
    CHECK_INT(r.consumed, sizeof "a\r\r\n.\r\n" - 1);
    CHECK_INT(r.defects, DATA_BARE_CR);
    CHECK_PREFIX(r.verdict, "550 5.5.2");
    CHECK_INT(r.close, 1);
    buf_free(&r.out);
    feed_every_way(S(".\r\n.\r\n"), BIG, &r);
    CHECK(r.done);
    CHECK_INT(r.consumed, 3);
    buf_free(&r.out);
}

/* Each row of shared/smtp-smuggling.md: the fake end, a smuggled transaction, then the real
 * end. The reader must only stop at the real end, record the defect, and refuse with 550 5.5.2
 * and close. */
static void smuggling_variants(void)
{
    static const struct {
        const char *fake_end;
        size_t n;
        unsigned defect;
    } rows[] = {
        {S("\n.\n"), DATA_BARE_LF},
        {S("\n.\r\n"), DATA_BARE_LF},
        {S("\r\n.\n"), DATA_BARE_LF},
        {S("\r.\r"), DATA_BARE_CR},
        {S("\r.\r\n"), DATA_BARE_CR},
        {S("\r\n.\rX"), DATA_BARE_CR},
        {S("\r\n.\r\r\n"), DATA_BARE_CR},
        {S("\n.\0\n"), DATA_BARE_LF | DATA_NUL},
        {S("\n.\0\r\n"), DATA_BARE_LF | DATA_NUL},
        {S("\n.x\r\n"), DATA_BARE_LF},
        {S("\r\n\0.\r\n"), DATA_NUL},
        {S("\r\n.\0\r\n"), DATA_NUL},
        {S("\n\r.\r\n"), DATA_BARE_LF | DATA_BARE_CR},
        {S("\r\n.\n.\r"), DATA_BARE_LF | DATA_BARE_CR},
    };
    static const char head[] = "From: a@example.net\r\nSubject: first\r\n\r\nfirst body";
    static const char smuggled[] = "MAIL FROM:<ceo@example.test>\r\nRCPT TO:<user@example.test>"
                                   "\r\nDATA\r\nFrom: ceo@example.test\r\n\r\nsmuggled\r\n";
    static const char real_end[] = "\r\n.\r\n";
    static const char after[] = "QUIT\r\n";
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char in[512];
        size_t n = 0;
        memcpy(in + n, head, sizeof head - 1);
        n += sizeof head - 1;
        memcpy(in + n, rows[i].fake_end, rows[i].n);
        n += rows[i].n;
        memcpy(in + n, smuggled, sizeof smuggled - 1);
        n += sizeof smuggled - 1;
        memcpy(in + n, real_end, sizeof real_end - 1);
        n += sizeof real_end - 1;
        size_t end = n;
        memcpy(in + n, after, sizeof after - 1);
        n += sizeof after - 1;

        struct result r;
        feed_every_way(in, n, BIG, &r);
        CHECK(r.done);
        CHECK_INT(r.consumed, end); /* only the real end ended it */
        CHECK_INT(r.defects, rows[i].defect);
        if (rows[i].defect & (DATA_BARE_LF | DATA_BARE_CR)) {
            CHECK_PREFIX(r.verdict, "550 5.5.2");
            CHECK_INT(r.close, 1);
        } else {
            CHECK_PREFIX(r.verdict, "550 5.6.0"); /* NUL only: refused, session goes on */
            CHECK_INT(r.close, 0);
        }
        /* The smuggled commands are content of the one message, not commands. */
        CHECK(r.out.len > 0 && memmem(r.out.data, r.out.len, "MAIL FROM:<ceo", 14) != NULL);
        buf_free(&r.out);
    }
}

static void line_length(void)
{
    char in[3000];
    struct result r;
    /* 998 octets + CRLF is the longest legal text line (RFC 5321 §4.5.3.1.6). */
    memset(in, 'x', 998);
    memcpy(in + 998, "\r\n.\r\n", 5);
    feed_every_way(in, 1003, BIG, &r);
    CHECK(r.done);
    CHECK_INT(r.defects, 0);
    CHECK_INT(r.out.len, 1000);
    buf_free(&r.out);
    /* 999 octets: refused, but the data is still read to its end. */
    memset(in, 'x', 999);
    memcpy(in + 999, "\r\n.\r\n", 5);
    feed_every_way(in, 1004, BIG, &r);
    CHECK(r.done);
    CHECK_INT(r.consumed, 1004);
    CHECK_INT(r.defects, DATA_LONG_LINE);
    CHECK_PREFIX(r.verdict, "550 5.5.2");
    CHECK_INT(r.close, 0);
    buf_free(&r.out);
    /* The limit is on the text line, after the stuffed dot is removed (RFC 5321 §4.5.2):
     * "." + 998 octets travels as 999 + CRLF and is the longest legal dot-stuffed line. */
    in[0] = '.';
    memset(in + 1, 'x', 998);
    memcpy(in + 999, "\r\n.\r\n", 5);
    feed_every_way(in, 1004, BIG, &r);
    CHECK(r.done);
    CHECK_INT(r.consumed, 1004);
    CHECK_INT(r.defects, 0);
    CHECK(r.verdict == NULL);
    CHECK_INT(r.out.len, 1000);
    CHECK(r.out.len == 1000 && r.out.data[0] == 'x' && memcmp(r.out.data + 998, "\r\n", 2) == 0);
    buf_free(&r.out);
    /* "." + 999 octets is 999 after unstuffing: still too long. */
    in[0] = '.';
    memset(in + 1, 'x', 999);
    memcpy(in + 1000, "\r\n.\r\n", 5);
    feed_every_way(in, 1005, BIG, &r);
    CHECK(r.done);
    CHECK_INT(r.defects, DATA_LONG_LINE);
    CHECK_PREFIX(r.verdict, "550 5.5.2");
    buf_free(&r.out);
    /* A text line that itself starts with "." travels as ".." and counts its own dot:
     * ".." + 997 is the 998-octet line ".xxx…", ".." + 998 is 999. */
    memcpy(in, "..", 2);
    memset(in + 2, 'x', 997);
    memcpy(in + 999, "\r\n.\r\n", 5);
    feed_every_way(in, 1004, BIG, &r);
    CHECK_INT(r.defects, 0);
    CHECK_INT(r.out.len, 1000);
    CHECK(r.out.len > 0 && r.out.data[0] == '.');
    buf_free(&r.out);
    memcpy(in, "..", 2);
    memset(in + 2, 'x', 998);
    memcpy(in + 1000, "\r\n.\r\n", 5);
    feed_every_way(in, 1005, BIG, &r);
    CHECK_INT(r.defects, DATA_LONG_LINE);
    buf_free(&r.out);
    /* A stuffed line after an ordinary one: the count restarts at each line. */
    memset(in, 'w', 998);
    memcpy(in + 998, "\r\n.", 3);
    memset(in + 1001, 'v', 998);
    memcpy(in + 1999, "\r\n.\r\n", 5);
    feed_every_way(in, 2004, BIG, &r);
    CHECK(r.done);
    CHECK_INT(r.defects, 0);
    CHECK_INT(r.out.len, 2000);
    buf_free(&r.out);
    /* Two maximal lines in a row are fine: the count restarts after each CRLF. */
    memset(in, 'y', 998);
    memcpy(in + 998, "\r\n", 2);
    memset(in + 1000, 'z', 998);
    memcpy(in + 1998, "\r\n.\r\n", 5);
    feed_every_way(in, 2003, BIG, &r);
    CHECK(r.done);
    CHECK_INT(r.defects, 0);
    buf_free(&r.out);
}

static void nul_bytes(void)
{
    struct result r;
    feed_every_way(S("a\0b\r\n.\r\n"), BIG, &r);
    CHECK(r.done);
    CHECK_INT(r.defects, DATA_NUL);
    CHECK_PREFIX(r.verdict, "550 5.6.0");
    CHECK_INT(r.close, 0);
    buf_free(&r.out);
    feed_every_way(S("\0\r\n.\r\n"), BIG, &r);
    CHECK(r.done);
    CHECK_INT(r.defects, DATA_NUL);
    buf_free(&r.out);
}

static void max_size(void)
{
    struct result r;
    /* Exactly at the limit: fine. 10 octets of content. */
    feed_every_way(S("12345678\r\n.\r\n"), 10, &r);
    CHECK(r.done);
    CHECK_INT(r.defects, 0);
    CHECK_INT(r.out.len, 10);
    buf_free(&r.out);
    /* One over: TOO_BIG, and the reader still consumes up to the real end (and no further),
     * without keeping more than the limit. */
    feed_every_way(S("123456789\r\nmore\r\n..x\r\n.\r\nRSET\r\n"), 10, &r);
    CHECK(r.done);
    CHECK_INT(r.consumed, sizeof "123456789\r\nmore\r\n..x\r\n.\r\n" - 1);
    CHECK_INT(r.defects, DATA_TOO_BIG);
    CHECK(r.out.len <= 10);
    CHECK_INT(r.received, 11 + 6 + 4); /* "..x" counts as ".x" */
    CHECK_PREFIX(r.verdict, "552 5.3.4");
    CHECK_INT(r.close, 0);
    buf_free(&r.out);
    /* Big input in one go. */
    size_t n = 200000;
    char *big = malloc(n + 5);
    for (size_t i = 0; i < n; i++)
        big[i] = i % 80 == 78 ? '\r' : i % 80 == 79 ? '\n' : 'a';
    memcpy(big + n, ".\r\n", 3);
    feed(big, n + 3, 4096, 0, &r);
    CHECK(r.done);
    CHECK_INT(r.consumed, n + 3);
    CHECK_INT(r.defects, DATA_TOO_BIG);
    CHECK(r.out.len <= 4096);
    buf_free(&r.out);
    free(big);
}

/* bare_newline = "normalize": a bare LF ends a line as CRLF would (stored as CRLF, the next
 * line unstuffed), but LF "." CRLF and LF "." LF are content, split anywhere. */
static void normalized_bare_lf(void)
{
    static const char in[] = "a\n.\r\n..b\nc\n.\nd\r\n.\r\nNEXT";
    static const char want[] = "a\r\n\r\n.b\r\nc\r\n\r\nd\r\n";
    for (size_t pos = 0; pos <= sizeof in - 1; pos++) {
        struct result r = {0};
        struct data_reader dr;
        data_reader_init(&dr, &r.out, BIG, 1);
        size_t used = data_reader_feed(&dr, in, pos, &r.done);
        if (!r.done)
            used += data_reader_feed(&dr, in + pos, sizeof in - 1 - pos, &r.done);
        CHECK(r.done);
        CHECK_INT(used, sizeof in - 1 - 4); /* up to the real CRLF.CRLF, not NEXT */
        CHECK_INT(dr.defects, 0);
        CHECK_INT(dr.normalized, 4);
        CHECK(data_reader_verdict(&dr, &r.close) == NULL);
        CHECK(r.out.len == sizeof want - 1 && memcmp(r.out.data, want, r.out.len) == 0);
        buf_free(&r.out);
    }
    /* A bare CR is still a defect. */
    struct result r = {0};
    struct data_reader dr;
    data_reader_init(&dr, &r.out, BIG, 1);
    data_reader_feed(&dr, "a\rb\r\n.\r\n", 9, &r.done);
    CHECK(r.done);
    CHECK_INT(dr.defects, DATA_BARE_CR);
    buf_free(&r.out);
}

/* BDAT content (data_reader_init_raw): dots and "." lines are plain octets, nothing ends the
 * data, the line checks are the same, and the end completes a last line without CRLF. */
static void raw_chunks(void)
{
    static const char in[] = "..a\r\n.\r\nMAIL FROM:<x@y>\r\n\r\n.\r\nend";
    for (size_t cut = 0; cut <= sizeof in - 1; cut++) {
        struct buf out = {0};
        struct data_reader r;
        data_reader_init_raw(&r, &out, 1000, 0);
        int done = 1;
        CHECK_INT(data_reader_feed(&r, in, cut, &done), cut);
        CHECK(!done);
        CHECK_INT(data_reader_feed(&r, in + cut, sizeof in - 1 - cut, &done), sizeof in - 1 - cut);
        CHECK(!done);
        data_reader_end(&r);
        CHECK_MEM(out.data, out.len, "..a\r\n.\r\nMAIL FROM:<x@y>\r\n\r\n.\r\nend\r\n",
                  sizeof "..a\r\n.\r\nMAIL FROM:<x@y>\r\n\r\n.\r\nend\r\n" - 1);
        CHECK_INT(r.defects, 0);
        buf_free(&out);
    }
    struct buf out = {0};
    struct data_reader r;
    int done, close;
    data_reader_init_raw(&r, &out, 1000, 0);
    data_reader_feed(&r, "a\r", 2, &done);
    data_reader_end(&r);
    CHECK_INT(r.defects, DATA_BARE_CR);
    CHECK(data_reader_verdict(&r, &close) != NULL);
    CHECK(close);
    buf_free(&out);
    data_reader_init_raw(&r, &out, 1000, 0);
    data_reader_feed(&r, "a\n.\nb\r\n", 7, &done);
    data_reader_end(&r);
    CHECK_INT(r.defects, DATA_BARE_LF);
    buf_free(&out);
    data_reader_init_raw(&r, &out, 1000, 1);
    data_reader_feed(&r, "a\n.\nb", 5, &done);
    data_reader_end(&r);
    CHECK_INT(r.defects, 0);
    CHECK_MEM(out.data, out.len, "a\r\n.\r\nb\r\n", 9);
    buf_free(&out);
}

int main(void)
{
    plain_message_and_unstuffing();
    end_only_at_crlf_dot_crlf();
    smuggling_variants();
    line_length();
    nul_bytes();
    max_size();
    normalized_bare_lf();
    raw_chunks();
    return CHECK_DONE();
}
