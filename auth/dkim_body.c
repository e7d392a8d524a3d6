/* DKIM body hashes for bodies in SMTP form; see dkim_body.h for why they are computed here. */
#include "auth/dkim_body.h"
#include "core/xalloc.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

/* Canonical text is gathered here and given to the digest in large updates: relaxed text comes
 * in runs of a few bytes (one word each), and a digest update costs far more than a copy. */
struct sink {
    EVP_MD_CTX *ctx;
    size_t n;
    bool ok;
    unsigned char buf[8192];
};

static void flush(struct sink *s)
{
    if (s->n && EVP_DigestUpdate(s->ctx, s->buf, s->n) != 1)
        s->ok = false;
    s->n = 0;
}

/* Small pieces are copied; large ones go straight to the digest. */
static void put(struct sink *s, const char *p, size_t n)
{
    bool large = n >= sizeof s->buf / 2;
    if (large || s->n + n > sizeof s->buf)
        flush(s);
    if (large) {
        if (EVP_DigestUpdate(s->ctx, p, n) != 1)
            s->ok = false;
        return;
    }
    memcpy(s->buf + s->n, p, n);
    s->n += n;
}

/* The line starting at *pos: *end gets where its CR LF starts and *pos moves past the CR LF.
 * False when no CR LF follows or a bare CR or LF comes before it. */
static bool next_line(const char *p, size_t len, size_t *pos, size_t *end)
{
    const char *lf = memchr(p + *pos, '\n', len - *pos);
    if (!lf || lf == p + *pos || lf[-1] != '\r')
        return false;
    size_t e = (size_t)(lf - p) - 1;
    if (memchr(p + *pos, '\r', e - *pos))
        return false;
    *end = e;
    *pos = e + 2;
    return true;
}

static bool wsp(char c)
{
    return c == ' ' || c == '\t';
}

/* The body as it is up to its last line with text; when it has none, CR LF if crlf_if_empty,
 * else nothing. */
static bool up_to_last_text(const char *p, size_t len, struct sink *s, bool crlf_if_empty)
{
    size_t pos = 0, end, cut = 0; /* cut: just past the last line that is not empty */
    while (pos < len) {
        size_t start = pos;
        if (!next_line(p, len, &pos, &end))
            return false;
        if (end > start)
            cut = pos;
    }
    if (cut)
        put(s, p, cut);
    else if (crlf_if_empty)
        put(s, "\r\n", 2);
    return true;
}

/* RFC 6376 3.4.3: the body as it is, without the empty lines at its end; CR LF if nothing
 * is left. */
static bool simple(const char *p, size_t len, struct sink *s)
{
    return up_to_last_text(p, len, s, true);
}

/* p[i, end) is in relaxed form as it is: no tab, no two spaces in a row, no space before a CR
 * or at the end. Most lines of most mail are, and most whole bodies. The loop has no branch a
 * byte, so that it vectorises (this file is built with -O3): spaces come every few bytes, and
 * a branch on them would mispredict. */
static bool relaxed_as_is(const char *p, size_t i, size_t end)
{
    if (end > i && (p[end - 1] == ' ' || p[end - 1] == '\t'))
        return false;
    unsigned char bad = 0;
    for (; i + 1 < end; i++) {
        unsigned char sp = p[i] == ' ', next = p[i + 1];
        bad |=
            (unsigned char)(p[i] == '\t') | (unsigned char)(sp & ((next == ' ') | (next == '\r')));
    }
    return !bad;
}

/* Hashes the line p[i, end), which has text and no white space at its end, in relaxed form. */
static void relaxed_line(struct sink *s, const char *p, size_t i, size_t end)
{
    while (i < end) {
        size_t run = i;
        while (i < end && !wsp(p[i]))
            i++;
        put(s, p + run, i - run);
        if (i < end) {
            put(s, " ", 1);
            while (wsp(p[i]))
                i++;
        }
    }
    put(s, "\r\n", 2);
}

/* RFC 6376 3.4.4: white space at line ends goes, other runs of it become one SP, and the empty
 * lines at the end go (an empty body stays empty). A line of white space only is empty. Runs
 * of lines already in that form are hashed straight from the body. */
static bool relaxed(const char *p, size_t len, struct sink *s)
{
    /* The common case, one scan of the whole body: it is in relaxed form but for its empty
     * lines at the end (a line of white space only has a space before its CR). */
    if (relaxed_as_is(p, 0, len))
        return up_to_last_text(p, len, s, false);
    size_t pos = 0, end;
    size_t vs = 0, ve = 0; /* p[vs, ve) is in relaxed form, ends with text and is not hashed yet */
    size_t blanks = 0;     /* empty lines since ve: hashed only if text follows them */
    while (pos < len) {
        size_t i = pos;
        if (!next_line(p, len, &pos, &end))
            return false;
        size_t text_end = end;
        while (text_end > i && wsp(p[text_end - 1]))
            text_end--;
        if (text_end == i) {
            blanks++;
            continue;
        }
        /* The empty lines in between are bare CR LF and the line needs no change: grow the run. */
        if (i - ve == 2 * blanks && relaxed_as_is(p, i, end)) {
            ve = pos;
            blanks = 0;
            continue;
        }
        put(s, p + vs, ve - vs);
        for (; blanks; blanks--)
            put(s, "\r\n", 2);
        relaxed_line(s, p, i, text_end);
        vs = ve = pos;
    }
    put(s, p + vs, ve - vs);
    return true;
}

bool dkim_body_hash(const char *body, size_t len, enum dkim_body_canon canon, bool sha1,
                    unsigned char out[DKIM_BODY_HASH_MAX], size_t *outlen)
{
    struct sink *s = xmalloc(sizeof *s);
    s->ctx = EVP_MD_CTX_new();
    s->n = 0;
    s->ok = s->ctx && EVP_DigestInit_ex(s->ctx, sha1 ? EVP_sha1() : EVP_sha256(), NULL) == 1;
    bool form = s->ok && (canon == DKIM_BODY_SIMPLE ? simple(body, len, s) : relaxed(body, len, s));
    flush(s);
    unsigned int n = 0;
    bool ok = form && s->ok && EVP_DigestFinal_ex(s->ctx, out, &n) == 1 && n <= DKIM_BODY_HASH_MAX;
    if (ok)
        *outlen = n;
    EVP_MD_CTX_free(s->ctx);
    free(s);
    return ok;
}
