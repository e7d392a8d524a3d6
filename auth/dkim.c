/* DKIM verification with libopendkim. The library's resolver hooks are pointed at auth/dns:
 * query_start runs the lookup to completion (auth runs on a worker thread, so blocking is
 * fine) and copies the answer packet, which libopendkim parses itself; query_waitreply then
 * only reports what happened. */
#include "auth/checks.h"
#include "auth/dns.h"
#include "core/log.h"
#include "core/xalloc.h"

#include <opendkim/dkim.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
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
    lib = dkim_init(NULL, NULL);
    if (!lib) {
        log_msg(LOG_ERR, "dkim: dkim_init failed");
        return;
    }
    dkim_dns_set_query_service(lib, NULL);
    dkim_dns_set_query_start(lib, q_start);
    dkim_dns_set_query_cancel(lib, q_cancel);
    dkim_dns_set_query_waitreply(lib, q_waitreply);
}

static enum dkim_res sig_result(DKIM_SIGINFO *sig, const char **why)
{
    unsigned flags = dkim_sig_getflags(sig);
    int err = dkim_sig_geterror(sig);
    *why = NULL;
    if ((flags & DKIM_SIGFLAG_PASSED) && dkim_sig_getbh(sig) == DKIM_SIGBH_MATCH)
        return DKIM_RES_PASS;
    if (err == DKIM_SIGERROR_KEYFAIL) {
        *why = "key lookup failed";
        return DKIM_RES_TEMPERROR;
    }
    if (err != DKIM_SIGERROR_OK && err != DKIM_SIGERROR_UNKNOWN)
        *why = dkim_sig_geterrorstr(err);
    else if (dkim_sig_getbh(sig) == DKIM_SIGBH_MISMATCH)
        *why = "body hash mismatch";
    else
        *why = "signature verification failed";
    /* RFC 8601 permerror: the signature or key could not be used at all. */
    switch (err) {
    case DKIM_SIGERROR_NOKEY:
    case DKIM_SIGERROR_DNSSYNTAX:
    case DKIM_SIGERROR_KEYDECODE:
    case DKIM_SIGERROR_KEYREVOKED:
    case DKIM_SIGERROR_VERSION:
    case DKIM_SIGERROR_DOMAIN:
    case DKIM_SIGERROR_KEYTYPEUNKNOWN:
    case DKIM_SIGERROR_KEYTYPEMISSING:
    case DKIM_SIGERROR_KEYVERSION:
    case DKIM_SIGERROR_NOTEMAILKEY:
        return DKIM_RES_PERMERROR;
    default:
        return DKIM_RES_FAIL;
    }
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
    for (size_t i = 0; i < h->n && st == DKIM_STAT_OK; i++) {
        size_t flen = h->f[i].len;
        while (flen > 0 &&
               (data[h->f[i].off + flen - 1] == '\n' || data[h->f[i].off + flen - 1] == '\r'))
            flen--;
        st = dkim_header(dk, (u_char *)data + h->f[i].off, flen);
    }
    if (st == DKIM_STAT_OK)
        st = dkim_eoh(dk);
    if (st == DKIM_STAT_OK && len > h->body_off)
        st = dkim_body(dk, (u_char *)data + h->body_off, len - h->body_off);
    if (st == DKIM_STAT_OK)
        st = dkim_eom(dk, NULL);

    DKIM_SIGINFO **sigs = NULL;
    int nsigs = 0;
    if (dkim_getsiglist(dk, &sigs, &nsigs) != DKIM_STAT_OK)
        nsigs = 0;
    bool pass = false, temp = false;
    for (int i = 0; i < nsigs; i++) {
        const char *why;
        enum dkim_res r = sig_result(sigs[i], &why);
        add_sig(a, (const char *)dkim_sig_getdomain(sigs[i]),
                (const char *)dkim_sig_getselector(sigs[i]), r, why);
        pass |= r == DKIM_RES_PASS;
        temp |= r == DKIM_RES_TEMPERROR;
    }
    /* libopendkim reports DKIM-Signature fields it cannot parse as no signature at all. */
    if ((size_t)nsigs < nsig_headers)
        add_sig(a, NULL, NULL, DKIM_RES_PERMERROR,
                st == DKIM_STAT_OK || st == DKIM_STAT_NOSIG ? "unparseable signature"
                                                            : dkim_geterror(dk));
    dkim_free(dk);
    if (pass)
        return VERDICT_PASS;
    if (temp)
        return VERDICT_PROCESSING_FAILED;
    /* The SES mapping: an unparseable signature cannot be judged. */
    if ((size_t)nsigs < nsig_headers && nsigs == 0)
        return VERDICT_PROCESSING_FAILED;
    return VERDICT_FAIL;
}

const char *dkim_res_name(enum dkim_res r)
{
    static const char *const names[] = {"none",    "pass",      "fail",
                                        "neutral", "temperror", "permerror"};
    return (unsigned)r < sizeof names / sizeof *names ? names[r] : "none";
}
