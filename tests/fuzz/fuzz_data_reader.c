/* libFuzzer target: the DATA reader. The first two input bytes choose a size limit, a chunk
 * pattern and whether bare LFs are normalized; the rest is the client's byte stream. The same
 * stream fed whole and fed in chunks (as TCP may deliver it) must give the same content, defects,
 * verdict and end position: the end of data must never depend on packet boundaries. The line limit
 * is checked against the unstuffed content. */
#include "receiver/smtp_data.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The longest CRLF-separated line in out (the last one may lack its CRLF). */
static size_t longest_line(const struct buf *out)
{
    size_t best = 0, start = 0;
    for (size_t i = 0; i + 1 < out->len; i++) {
        if (out->data[i] == '\r' && out->data[i + 1] == '\n') {
            if (i - start > best)
                best = i - start;
            start = i + 2;
            i++;
        }
    }
    if (out->len > start && out->len - start > best)
        best = out->len - start;
    return best;
}

struct run {
    struct buf out;
    struct data_reader r;
    size_t consumed; /* stream octets consumed up to and including the end of data */
    int done;
};

static void feed_all(struct run *x, const char *p, size_t n, size_t max_size, int normalize,
                     const uint8_t *chunks, size_t nchunks)
{
    memset(x, 0, sizeof *x);
    data_reader_init(&x->r, &x->out, max_size, normalize);
    size_t off = 0, k = 0;
    while (off < n && !x->done) {
        size_t want = n - off;
        if (nchunks) {
            size_t c = (size_t)chunks[k++ % nchunks] % 17 + 1; /* 1..17 octets */
            if (c < want)
                want = c;
        }
        size_t used = data_reader_feed(&x->r, p + off, want, &x->done);
        if (used > want || (!x->done && used != want))
            abort(); /* must take everything unless it found the end */
        off += used;
    }
    x->consumed = off;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t max_size = 64 + (size_t)data[0] * 64;
    size_t nchunks = data[1] % 8;
    int normalize = (data[1] & 8) != 0;
    const uint8_t *chunks = data + 2;
    if (nchunks > size - 2)
        nchunks = size - 2;
    const char *stream = (const char *)data + 2;
    size_t n = size - 2;

    struct run whole, chunked;
    feed_all(&whole, stream, n, max_size, normalize, NULL, 0);
    feed_all(&chunked, stream, n, max_size, normalize, nchunks ? chunks : (const uint8_t *)"\0", 1);
    if (normalize && (whole.r.defects & DATA_BARE_LF))
        abort();
    if (whole.done != chunked.done || whole.consumed != chunked.consumed ||
        whole.r.defects != chunked.r.defects || whole.r.received != chunked.r.received)
        abort();
    /* Over the size limit the kept prefix may differ (runs are dropped whole), but such a
     * message is refused with 552 and its content never used. */
    if (!(whole.r.defects & DATA_TOO_BIG) &&
        (whole.out.len != chunked.out.len ||
         (whole.out.len && memcmp(whole.out.data, chunked.out.data, whole.out.len) != 0)))
        abort();
    if (whole.out.len > max_size)
        abort();
    /* Without bare CR/LF the content is whole unstuffed lines: the line limit (RFC 5321
     * §4.5.3.1.6) is exceeded exactly when one of them is longer than 998 octets. */
    if (!(whole.r.defects & (DATA_TOO_BIG | DATA_BARE_CR | DATA_BARE_LF)) &&
        !(whole.r.defects & DATA_LONG_LINE) != !(longest_line(&whole.out) > SMTP_TEXT_LINE_MAX - 2))
        abort();
    int c1 = 0, c2 = 0;
    const char *v1 = data_reader_verdict(&whole.r, &c1);
    const char *v2 = data_reader_verdict(&chunked.r, &c2);
    if ((v1 == NULL) != (v2 == NULL) || (v1 && strcmp(v1, v2) != 0) || c1 != c2)
        abort();
    /* The end of data is only ever CRLF.CRLF (or the stream's very start being ".CRLF"), with
     * bare LFs normalized or not: never LF.CRLF. */
    if (whole.done) {
        size_t e = whole.consumed;
        if (e < 3 || memcmp(stream + e - 3, ".\r\n", 3) != 0)
            abort();
        if (e > 3 && (e < 5 || memcmp(stream + e - 5, "\r\n", 2) != 0))
            abort();
    }
    buf_free(&whole.out);
    buf_free(&chunked.out);
    return 0;
}
