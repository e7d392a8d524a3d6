/* DKIM body hashes (auth/dkim_body.c): the canonical forms RFC 6376 gives, checked by hashing
 * the expected text independently; bodies not in SMTP form refused; and for every case and a
 * few thousand generated bodies, the same hash libopendkim computes itself. */
#include "../tools/opendkim_body_hash.h"
#include "auth/dkim_body.h"
#include "check.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

static DKIM_LIB *ref_lib;

/* The hash of body under canon equals the digest of the expected canonical text, and
 * libopendkim's. */
static void check_form(const char *body, size_t len, enum dkim_body_canon canon, bool sha1,
                       const char *canonical, int line)
{
    unsigned char got[DKIM_BODY_HASH_MAX], want[EVP_MAX_MD_SIZE], ref[32];
    size_t glen = 0;
    unsigned int wlen = 0;
    bool ok = dkim_body_hash(body, len, canon, sha1, got, &glen);
    EVP_Digest(canonical, strlen(canonical), want, &wlen, sha1 ? EVP_sha1() : EVP_sha256(), NULL);
    size_t rlen = opendkim_ref_hash(ref_lib, body, len, canon == DKIM_BODY_RELAXED, sha1, ref);
    int same = ok && glen == wlen && memcmp(got, want, wlen) == 0;
    int as_lib = ok && rlen == glen && memcmp(got, ref, glen) == 0;
    if (!same || !as_lib)
        fprintf(stderr, "line %d: %s/%s: hashed=%d as RFC=%d as libopendkim=%d\n", line,
                canon == DKIM_BODY_RELAXED ? "relaxed" : "simple", sha1 ? "sha1" : "sha256", ok,
                same, as_lib);
    CHECK(same);
    CHECK(as_lib);
}

#define FORMS(body, simple_form, relaxed_form)                                                     \
    do {                                                                                           \
        check_form(body, sizeof body - 1, DKIM_BODY_SIMPLE, false, simple_form, __LINE__);         \
        check_form(body, sizeof body - 1, DKIM_BODY_RELAXED, false, relaxed_form, __LINE__);       \
        check_form(body, sizeof body - 1, DKIM_BODY_SIMPLE, true, simple_form, __LINE__);          \
        check_form(body, sizeof body - 1, DKIM_BODY_RELAXED, true, relaxed_form, __LINE__);        \
    } while (0)

static void rfc_forms(void)
{
    /* RFC 6376 3.4.5's example */
    FORMS(" C \r\nD \t E\r\n\r\n\r\n", " C \r\nD \t E\r\n", " C\r\nD E\r\n");
    /* no body: simple is one CR LF, relaxed nothing (RFC 6376 3.4.3, 3.4.4) */
    FORMS("", "\r\n", "");
    FORMS("\r\n\r\n", "\r\n", "");
    FORMS(" \t \r\n", " \t \r\n", "");
    FORMS("Hello.\r\n", "Hello.\r\n", "Hello.\r\n");
    /* white space only lines are empty in relaxed form, at the end and in between */
    FORMS("a\r\n  \r\n\r\n", "a\r\n  \r\n", "a\r\n");
    FORMS("a\r\n \t \r\nb\r\n", "a\r\n \t \r\nb\r\n", "a\r\n\r\nb\r\n");
    FORMS("a\r\n\r\n \r\nb\r\n", "a\r\n\r\n \r\nb\r\n", "a\r\n\r\n\r\nb\r\n");
    /* runs of white space, leading white space, tabs */
    FORMS("  a  b\t\tc \r\n", "  a  b\t\tc \r\n", " a b c\r\n");
    FORMS(" a\r\n", " a\r\n", " a\r\n");
    FORMS("\r\n\r\na\r\n", "\r\n\r\na\r\n", "\r\n\r\na\r\n");
    /* lines in relaxed form and lines that are not, in turn, with empty lines between */
    FORMS("a b\r\n\r\nb  c\r\n\r\n\r\nd e\r\nf\t\r\n\r\n",
          "a b\r\n\r\nb  c\r\n\r\n\r\nd e\r\nf\t\r\n", "a b\r\n\r\nb c\r\n\r\n\r\nd e\r\nf\r\n");
    /* a dot-stuffed line arrives unstuffed; a lone dot is text */
    FORMS(".\r\n", ".\r\n", ".\r\n");
    /* bytes outside ASCII are text */
    FORMS("caf\xc3\xa9 \xff\r\n", "caf\xc3\xa9 \xff\r\n", "caf\xc3\xa9 \xff\r\n");
}

/* Bodies not in SMTP form are refused (libopendkim hashes those), whatever the canon. */
static void not_smtp_form(void)
{
    static const char *const bad[] = {"a\nb\r\n", "a\rb\r\n", "abc",    "abc\r\n\n",
                                      "\n",       "\r",       "\r\r\n", "a\r\n\r"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        unsigned char md[DKIM_BODY_HASH_MAX];
        size_t n = 0;
        CHECK(!dkim_body_hash(bad[i], strlen(bad[i]), DKIM_BODY_SIMPLE, false, md, &n));
        CHECK(!dkim_body_hash(bad[i], strlen(bad[i]), DKIM_BODY_RELAXED, false, md, &n));
        CHECK_INT(n, 0);
    }
}

/* Generated bodies, small and beyond the hashing buffer, against libopendkim. */
static void as_libopendkim(void)
{
    static const char *const pieces[] = {"word", " ", "  ", "\t", "\r\n", "\r\n\r\n", ".", "x"};
    unsigned seed = 12345;
    int same = 0, total = 0;
    for (int round = 0; round < 3000; round++) {
        size_t want = round < 2900 ? (size_t)(round % 200) : 40000 + (size_t)round;
        char *body = malloc(want + 16);
        size_t len = 0;
        while (len < want) {
            seed = seed * 1103515245u + 12345u;
            const char *p = pieces[(seed >> 16) % (sizeof pieces / sizeof *pieces)];
            memcpy(body + len, p, strlen(p));
            len += strlen(p);
        }
        if (len < 2 || memcmp(body + len - 2, "\r\n", 2) != 0) {
            memcpy(body + len, "\r\n", 2);
            len += 2;
        }
        for (int relaxed = 0; relaxed < 2; relaxed++) {
            unsigned char got[DKIM_BODY_HASH_MAX], ref[32];
            size_t glen = 0;
            bool ok = dkim_body_hash(body, len, relaxed ? DKIM_BODY_RELAXED : DKIM_BODY_SIMPLE,
                                     round & 1, got, &glen);
            size_t rlen = opendkim_ref_hash(ref_lib, body, len, relaxed, round & 1, ref);
            total++;
            same += ok && rlen == glen && memcmp(got, ref, glen) == 0;
        }
        free(body);
    }
    CHECK_INT(same, total);
}

int main(void)
{
    ref_lib = opendkim_ref_lib();
    CHECK(ref_lib != NULL);
    if (!ref_lib)
        return CHECK_DONE();
    rfc_forms();
    not_smtp_form();
    as_libopendkim();
    dkim_close(ref_lib);
    return CHECK_DONE();
}
