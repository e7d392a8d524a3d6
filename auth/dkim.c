/* DKIM verification with libopendkim. The library's resolver hooks are pointed at auth/dns:
 * query_start runs the lookup to completion (auth runs on a worker thread, so blocking is
 * fine) and copies the answer packet, which libopendkim parses itself; query_waitreply then
 * only reports what happened. */
#include "auth/checks.h"
#include "auth/dkim_body.h"
#include "auth/dkim_key_cache.h"
#include "auth/dns.h"
#include "core/log.h"
#include "core/xalloc.h"

#include <ctype.h>
#include <opendkim/dkim.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unbound.h>

struct dkim_query {
    int status; /* DKIM_DNS_SUCCESS or DKIM_DNS_ERROR */
    size_t bytes;
};

static DKIM_LIB *lib;

static int q_start(void *srv, int type, unsigned char *query, unsigned char *buf, size_t buflen,
                   void **qh)
{
    (void)srv;
    struct dkim_query *q = xcalloc(1, sizeof *q);
    struct ub_result *res = NULL;
    enum dns_status st = dns_query((const char *)query, type, &res);
    if (st == DNS_NXDOMAIN && !res && buflen >= 17) {
        /* A name that cannot exist (d= or s= not a valid domain) has no answer packet: hand
         * the library an NXDOMAIN reply (QR RD, RA, rcode 3; one question for the root, TXT,
         * since the name itself has no wire form), so it reports "no key" rather than a DNS
         * failure. */
        static const unsigned char nxdomain[17] = {0, 0, 0x81, 0x83, 0, 1,  0, 0, 0,
                                                   0, 0, 0,    0,    0, 16, 0, 1};
        memcpy(buf, nxdomain, sizeof nxdomain);
        q->status = DKIM_DNS_SUCCESS;
        q->bytes = sizeof nxdomain;
    } else if (st == DNS_TEMPFAIL || !res || !res->answer_packet) {
        q->status = DKIM_DNS_ERROR;
    } else {
        q->status = DKIM_DNS_SUCCESS;
        q->bytes = (size_t)res->answer_len < buflen ? (size_t)res->answer_len : buflen;
        memcpy(buf, res->answer_packet, q->bytes);
    }
    ub_resolve_free(res);
    *qh = q;
    return 0;
}

static int q_cancel(void *srv, void *qh)
{
    (void)srv;
    free(qh);
    return 0;
}

static int q_waitreply(void *srv, void *qh, struct timeval *to, size_t *bytes, int *error,
                       int *dnssec)
{
    (void)srv;
    (void)to;
    struct dkim_query *q = qh;
    if (bytes)
        *bytes = q->bytes;
    if (error)
        *error = 0;
    if (dnssec)
        *dnssec = DKIM_DNSSEC_UNKNOWN;
    return q->status;
}

static void lib_init(void)
{
    dkim_key_cache_init(); /* libopendkim's key decodes, see dkim_key_cache.c */
    lib = dkim_init(NULL, NULL);
    if (!lib) {
        log_msg(LOG_ERR, "dkim: dkim_init failed");
        return;
    }
    /* Signatures that do not parse get handles too (with their error), so that one malformed
     * DKIM-Signature is one failed signature rather than the end of verification. */
    unsigned int flags = 0;
    dkim_options(lib, DKIM_OP_GETOPT, DKIM_OPTS_FLAGS, &flags, sizeof flags);
    flags |= DKIM_LIBFLAGS_BADSIGHANDLES;
    dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_FLAGS, &flags, sizeof flags);
    dkim_dns_set_query_service(lib, NULL);
    dkim_dns_set_query_start(lib, q_start);
    dkim_dns_set_query_cancel(lib, q_cancel);
    dkim_dns_set_query_waitreply(lib, q_waitreply);
}

/* bh is the signature's body hash result, a DKIM_SIGBH_* value; own: computed here, while
 * libopendkim saw an empty body. */
static enum dkim_res sig_result(DKIM_SIGINFO *sig, int bh, bool own, const char **why)
{
    unsigned flags = dkim_sig_getflags(sig);
    int err = dkim_sig_geterror(sig);
    *why = NULL;
    /* libopendkim marks a signature whose body hash it found wrong as BADSIG even when the
     * header signature verified (PASSED); with the hash computed here that mark means nothing. */
    if (own && (flags & DKIM_SIGFLAG_PASSED) && err == DKIM_SIGERROR_BADSIG)
        err = DKIM_SIGERROR_OK;
    if ((flags & DKIM_SIGFLAG_PASSED) && bh == DKIM_SIGBH_MATCH)
        return DKIM_RES_PASS;
    if (err == DKIM_SIGERROR_KEYFAIL) {
        *why = "key lookup failed";
        return DKIM_RES_TEMPERROR;
    }
    if (err != DKIM_SIGERROR_OK && err != DKIM_SIGERROR_UNKNOWN)
        *why = dkim_sig_geterrorstr(err);
    else if (bh == DKIM_SIGBH_MISMATCH)
        *why = "body hash mismatch";
    else
        *why = "signature verification failed";
    /* fail: the signature was checked and is wrong (or too old); permerror (RFC 8601): the
     * signature or its key could not be used at all: malformed tags, no or bad key. */
    switch (err) {
    case DKIM_SIGERROR_OK:
    case DKIM_SIGERROR_UNKNOWN:
    case DKIM_SIGERROR_BADSIG:
    case DKIM_SIGERROR_EXPIRED:
    case DKIM_SIGERROR_FUTURE:
    case DKIM_SIGERROR_TOOLARGE_L:
    case DKIM_SIGERROR_MBSFAILED:
    case DKIM_SIGERROR_KEYTOOSMALL:
        return DKIM_RES_FAIL;
    default:
        return DKIM_RES_PERMERROR;
    }
}

static const char *tag(DKIM_SIGINFO *sig, bool key, const char *name)
{
    return (const char *)dkim_sig_gettagvalue(sig, key, (u_char *)name);
}

/* d is the domain or a subdomain of parent (both without a final dot, any case). */
static bool within(const char *d, const char *parent)
{
    size_t dl = strlen(d), pl = strlen(parent);
    if (dl == pl)
        return strcasecmp(d, parent) == 0;
    return dl > pl && d[dl - pl - 1] == '.' && strcasecmp(d + dl - pl, parent) == 0;
}

/* The colon-separated list h= (which may be folded) names field. */
static bool list_has(const char *list, const char *field)
{
    size_t fl = strlen(field);
    for (const char *p = list; *p;) {
        p += strspn(p, " \t\r\n");
        size_t n = strcspn(p, ":");
        size_t m = n;
        while (m > 0 && strchr(" \t\r\n", p[m - 1]))
            m--;
        if (m == fl && strncasecmp(p, field, fl) == 0)
            return true;
        p += n;
        if (*p == ':')
            p++;
    }
    return false;
}

/* What RFC 6376 and RFC 8301 require beyond libopendkim 2.11's verdict r: it passes rsa-sha1
 * and RSA keys of any size, ignores a key record's k= when it contradicts a=, and applies the
 * i=, h= and x= rules only in part. A key in testing mode (t=y) makes a verified or failed
 * signature count as no signature (RFC 6376 §3.6.1): neutral. DNS failures stay temperror. */
static enum dkim_res rfc_checks(DKIM_SIGINFO *sig, enum dkim_res r, const char **why)
{
    if (r == DKIM_RES_TEMPERROR)
        return r;
    const char *d = tag(sig, false, "d");
    const char *i = tag(sig, false, "i");
    if (d && i) {
        const char *at = strrchr(i, '@');
        if (!within(at ? at + 1 : i, d)) {
            *why = "i= is not within d= (RFC 6376 3.5)";
            return DKIM_RES_PERMERROR;
        }
    }
    const char *h = tag(sig, false, "h");
    if (!h || !list_has(h, "from")) {
        *why = "signature does not cover From (RFC 6376 5.4)";
        return DKIM_RES_PERMERROR;
    }
    const char *x = tag(sig, false, "x");
    if (x) {
        char *end;
        long long exp = strtoll(x, &end, 10);
        if (end == x || *end || exp < (long long)time(NULL)) {
            *why = "signature expired (x=)";
            return DKIM_RES_FAIL;
        }
    }
    /* a= as written: libopendkim reports an unknown algorithm as its value 0, rsa-sha1 */
    const char *a = tag(sig, false, "a");
    dkim_alg_t alg = DKIM_SIGN_UNKNOWN;
    if (a && strcasecmp(a, "rsa-sha256") == 0)
        alg = DKIM_SIGN_RSASHA256;
    else if (a && strcasecmp(a, "ed25519-sha256") == 0)
        alg = DKIM_SIGN_ED25519SHA256;
    else if (a && strcasecmp(a, "rsa-sha1") == 0)
        alg = DKIM_SIGN_RSASHA1;
    if (alg == DKIM_SIGN_UNKNOWN) {
        *why = "unknown signature algorithm (a=)";
        return DKIM_RES_PERMERROR;
    }
    if (alg == DKIM_SIGN_RSASHA1) {
        *why = "rsa-sha1 is not accepted (RFC 8301)";
        return DKIM_RES_FAIL;
    }
    unsigned flags = dkim_sig_getflags(sig);
    const char *sel = tag(sig, false, "s");
    if (d && sel) {
        /* The key record's k= as libopendkim parsed it ("rsa" when absent, RFC 6376 3.6.1);
         * a record it could not read has no p= here and fails on its own. */
        const char *k = tag(sig, true, "k");
        const char *want = alg == DKIM_SIGN_ED25519SHA256 ? "ed25519" : "rsa";
        if (tag(sig, true, "p") && strcasecmp(k ? k : "rsa", want) != 0) {
            *why = "key record k= does not match the signature's a=";
            return DKIM_RES_PERMERROR;
        }
        unsigned bits = 0;
        if (alg == DKIM_SIGN_RSASHA256 && dkim_sig_getkeysize(sig, &bits) == DKIM_STAT_OK &&
            bits < 1024) {
            *why = "RSA key shorter than 1024 bits (RFC 8301)";
            return DKIM_RES_FAIL;
        }
    }
    if ((flags & DKIM_SIGFLAG_TESTKEY) && (r == DKIM_RES_PASS || r == DKIM_RES_FAIL)) {
        *why = "key in testing mode (t=y): counts as unsigned";
        return DKIM_RES_NEUTRAL;
    }
    return r;
}

static void add_sig(struct auth_details *a, const char *d, const char *s, enum dkim_res r,
                    const char *why)
{
    a->sigs = xrealloc(a->sigs, (a->nsigs + 1) * sizeof *a->sigs);
    struct dkim_sig_detail *x = &a->sigs[a->nsigs++];
    x->domain = xstrdup(d ? d : "");
    x->selector = xstrdup(s ? s : "");
    x->result = r;
    x->reason = why ? xstrdup(why) : NULL;
}

/* RFC 6376 §3.2 tag-list, for the value of a DKIM-Signature field (text after the colon, len
 * bytes): tag-spec *( ";" tag-spec ) [ ";" ], each tag-spec [FWS] ALPHA *(ALPHA / DIGIT / "_")
 * [FWS] "=" [FWS] values of VALCHAR (or UTF-8) separated by FWS, no tag twice. libopendkim stops
 * verifying the whole message at a field that breaks this, so such a field is kept away from
 * it and counted as one failed signature. */
static bool tag_list_ok(const char *v, size_t len)
{
    char seen[32][16];
    size_t nseen = 0;
    size_t i = 0;
    for (;;) {
        while (i < len && strchr(" \t\r\n", v[i]))
            i++;
        if (i == len)
            return nseen > 0; /* a trailing ";" (or nothing at all) */
        size_t name = i;
        if (!((v[i] >= 'a' && v[i] <= 'z') || (v[i] >= 'A' && v[i] <= 'Z')))
            return false;
        while (i < len && (isalnum((unsigned char)v[i]) || v[i] == '_'))
            i++;
        size_t nlen = i - name;
        while (i < len && strchr(" \t\r\n", v[i]))
            i++;
        if (i == len || v[i] != '=')
            return false;
        i++;
        for (; i < len && v[i] != ';'; i++) {
            unsigned char c = (unsigned char)v[i];
            /* UTF-8 is let through: RFC 8616 allows it in i= and d= */
            if (c == 0 || (!strchr(" \t\r\n", c) && (c < 0x21 || c == 0x7f)))
                return false;
        }
        for (size_t k = 0; k < nseen; k++)
            if (strlen(seen[k]) == nlen && strncmp(seen[k], v + name, nlen) == 0)
                return false;
        if (nseen < sizeof seen / sizeof *seen && nlen < sizeof *seen) {
            memcpy(seen[nseen], v + name, nlen);
            seen[nseen++][nlen] = '\0';
        }
        if (i == len)
            return true;
        i++; /* the ';' */
    }
}

static bool malformed_signature(const char *data, const struct hdr_field *f)
{
    if (!header_is(data, f, "DKIM-Signature"))
        return false;
    const char *colon = memchr(data + f->off, ':', f->len);
    if (!colon)
        return true;
    size_t off = (size_t)(colon + 1 - (data + f->off));
    return !tag_list_ok(colon + 1, f->len - off);
}

/* The body hashes of one message, each canonicalisation and digest computed at most once.
 * Indexes: [relaxed][sha1]. */
struct body_hashes {
    const char *body;
    size_t len;
    bool tried[2][2], ok[2][2];
    unsigned char md[2][2][DKIM_BODY_HASH_MAX];
    size_t mdlen[2][2];
};

/* bh= (base64, possibly folded) decodes to md. */
static bool bh_equals(const char *b64, const unsigned char *md, size_t mdlen)
{
    char clean[96];
    size_t n = 0;
    for (; *b64; b64++) {
        if (strchr(" \t\r\n", *b64))
            continue;
        if (n == sizeof clean - 1)
            return false;
        clean[n++] = *b64;
    }
    clean[n] = '\0';
    unsigned char raw[sizeof clean];
    if (n == 0 || n % 4)
        return false;
    int got = EVP_DecodeBlock(raw, (const unsigned char *)clean, (int)n);
    size_t pad = (clean[n - 1] == '=') + (clean[n - 2] == '=');
    return got >= 0 && (size_t)got - pad == mdlen && memcmp(raw, md, mdlen) == 0;
}

/* The DKIM_SIGBH_* result of signature sig against the body in b, or false when libopendkim
 * must hash the body itself: the signature has l= (rare, and libopendkim's l= checks are
 * tied to its own hashing) or the body is not in SMTP form. */
static bool own_body_hash(DKIM_SIGINFO *sig, struct body_hashes *b, int *bh)
{
    int err = dkim_sig_geterror(sig);
    if (err != DKIM_SIGERROR_UNKNOWN && err != DKIM_SIGERROR_OK) {
        *bh = DKIM_SIGBH_UNTESTED; /* refused while parsing: the body does not matter */
        return true;
    }
    dkim_canon_t hc, bc;
    dkim_alg_t alg;
    const char *want = tag(sig, false, "bh");
    if (tag(sig, false, "l") || !want || dkim_sig_getcanons(sig, &hc, &bc) != DKIM_STAT_OK ||
        dkim_sig_getsignalg(sig, &alg) != DKIM_STAT_OK)
        return false;
    int r = bc == DKIM_CANON_RELAXED, s1 = alg == DKIM_SIGN_RSASHA1;
    if (!b->tried[r][s1]) {
        b->tried[r][s1] = true;
        b->ok[r][s1] = dkim_body_hash(b->body, b->len, r ? DKIM_BODY_RELAXED : DKIM_BODY_SIMPLE, s1,
                                      b->md[r][s1], &b->mdlen[r][s1]);
    }
    if (!b->ok[r][s1])
        return false;
    *bh = bh_equals(want, b->md[r][s1], b->mdlen[r][s1]) ? DKIM_SIGBH_MATCH : DKIM_SIGBH_MISMATCH;
    return true;
}

/* Body hash results for every signature libopendkim found in the header (after dkim_eoh), in
 * the order of its signature list; NULL when libopendkim is to hash the body after all. The
 * caller frees the array. */
static int *own_body_hashes(DKIM *dk, const char *body, size_t len, int *n)
{
    DKIM_SIGINFO **sigs = NULL;
    if (dkim_getsiglist(dk, &sigs, n) != DKIM_STAT_OK || *n <= 0)
        return NULL;
    struct body_hashes *b = xcalloc(1, sizeof *b);
    b->body = body;
    b->len = len;
    int *bh = xcalloc((size_t)*n, sizeof *bh);
    for (int i = 0; i < *n; i++) {
        if (!own_body_hash(sigs[i], b, &bh[i])) {
            free(bh);
            bh = NULL;
            break;
        }
    }
    free(b);
    return bh;
}

static size_t count_signatures(const char *data, const struct hdr_list *h)
{
    size_t n = 0;
    for (size_t i = 0; i < h->n; i++)
        n += header_is(data, &h->f[i], "DKIM-Signature");
    return n;
}

enum verdict dkim_check(const char *data, size_t len, const struct hdr_list *h,
                        struct auth_details *a)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, lib_init);
    size_t nsig_headers = count_signatures(data, h);
    if (nsig_headers == 0)
        return VERDICT_GRAY;
    if (!lib)
        return VERDICT_PROCESSING_FAILED;

    DKIM_STAT st;
    DKIM *dk = dkim_verify(lib, (const unsigned char *)"sluice", NULL, &st);
    if (!dk)
        return VERDICT_PROCESSING_FAILED;
    size_t malformed = 0;
    for (size_t i = 0; i < h->n && st == DKIM_STAT_OK; i++) {
        if (malformed_signature(data, &h->f[i])) {
            malformed++;
            continue;
        }
        size_t flen = h->f[i].len;
        while (flen > 0 &&
               (data[h->f[i].off + flen - 1] == '\n' || data[h->f[i].off + flen - 1] == '\r'))
            flen--;
        st = dkim_header(dk, (u_char *)data + h->f[i].off, flen);
    }
    if (st == DKIM_STAT_OK)
        st = dkim_eoh(dk);
    size_t body_len = len > h->body_off ? len - h->body_off : 0;
    int *own_bh = NULL, n_own = 0;
    if (st == DKIM_STAT_OK)
        own_bh = own_body_hashes(dk, data + h->body_off, body_len, &n_own);
    if (st == DKIM_STAT_OK && !own_bh && body_len)
        st = dkim_body(dk, (u_char *)data + h->body_off, body_len);
    if (st == DKIM_STAT_OK) {
        DKIM_STAT eom = dkim_eom(dk, NULL);
        /* With the body hashed here, libopendkim's verdict on the whole message judged an
         * empty body: only its per-signature results are used. */
        if (!own_bh)
            st = eom;
    }

    DKIM_SIGINFO **sigs = NULL;
    int nsigs = 0;
    if (dkim_getsiglist(dk, &sigs, &nsigs) != DKIM_STAT_OK)
        nsigs = 0;
    bool pass = false, temp = false, counted = false;
    for (int i = 0; i < nsigs; i++) {
        const char *why;
        int bh = own_bh && i < n_own ? own_bh[i] : dkim_sig_getbh(sigs[i]);
        enum dkim_res r = rfc_checks(sigs[i], sig_result(sigs[i], bh, own_bh != NULL, &why), &why);
        add_sig(a, (const char *)dkim_sig_getdomain(sigs[i]),
                (const char *)dkim_sig_getselector(sigs[i]), r, why);
        pass |= r == DKIM_RES_PASS;
        temp |= r == DKIM_RES_TEMPERROR;
        counted |= r != DKIM_RES_NEUTRAL;
    }
    for (size_t i = 0; i < malformed; i++) {
        counted = true;
        add_sig(a, NULL, NULL, DKIM_RES_PERMERROR, "malformed DKIM-Signature tag list");
    }
    /* libopendkim reports DKIM-Signature fields it cannot parse as no signature at all: each
     * is a failed signature (permerror), not a reason to give up on the message. */
    if ((size_t)nsigs + malformed < nsig_headers) {
        counted = true;
        add_sig(a, NULL, NULL, DKIM_RES_PERMERROR,
                st == DKIM_STAT_OK || st == DKIM_STAT_NOSIG ? "unparseable signature"
                                                            : dkim_geterror(dk));
    }
    free(own_bh);
    dkim_free(dk);
    if (pass)
        return VERDICT_PASS;
    if (temp) /* only DNS trouble: the key could not be fetched */
        return VERDICT_PROCESSING_FAILED;
    if (!counted) /* every signature was made with a testing key */
        return VERDICT_GRAY;
    return VERDICT_FAIL;
}

const char *dkim_res_name(enum dkim_res r)
{
    static const char *const names[] = {"none",    "pass",      "fail",
                                        "neutral", "temperror", "permerror"};
    return (unsigned)r < sizeof names / sizeof *names ? names[r] : "none";
}
