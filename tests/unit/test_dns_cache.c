/* The per-thread DNS answer cache: hits, TTL expiry and caps, case and trailing-dot keys,
 * what is never kept, slot replacement, and copies that ub_resolve_free frees (ASan checks
 * the frees in the sanitizer run). */
#include "auth/dns_cache.h"
#include "check.h"
#include "core/xalloc.h"

#include <stdlib.h>
#include <string.h>
#include <unbound.h>

/* A result shaped like libunbound's: every part malloc'd separately. */
static struct ub_result *txt_result(const char *qname, const char *text, int ttl)
{
    struct ub_result *r = xcalloc(1, sizeof *r);
    r->qname = xstrdup(qname);
    r->canonname = r->qname;
    r->qtype = 16;
    r->qclass = 1;
    r->data = xcalloc(2, sizeof *r->data);
    r->len = xcalloc(2, sizeof *r->len);
    size_t n = strlen(text);
    r->data[0] = xmalloc(n + 1);
    r->data[0][0] = (char)n;
    memcpy(r->data[0] + 1, text, n);
    r->len[0] = (int)n + 1;
    r->answer_packet = xmalloc(12);
    memset(r->answer_packet, 0xab, 12);
    r->answer_len = 12;
    r->havedata = 1;
    r->ttl = ttl;
    return r;
}

static struct ub_result *nx_result(const char *qname, int ttl)
{
    struct ub_result *r = xcalloc(1, sizeof *r);
    r->qname = xstrdup(qname);
    r->canonname = xstrdup("other.example");
    r->rcode = 3;
    r->nxdomain = 1;
    r->ttl = ttl;
    return r;
}

int main(void)
{
    struct dns_cache *c = dns_cache_new();
    enum dns_status st = DNS_TEMPFAIL;
    struct ub_result *got = NULL;

    /* A miss on an empty cache. */
    CHECK(!dns_cache_get(c, "example.com", 16, 0, &st, &got));
    CHECK(got == NULL);

    /* A kept answer comes back as an equal, separate copy, with the TTL that is left. */
    struct ub_result *r = txt_result("example.com.", "v=spf1 -all", 100);
    dns_cache_put(c, "example.com", 16, DNS_OK, r, 1000);
    CHECK(dns_cache_get(c, "example.com", 16, 41000, &st, &got));
    CHECK_INT(st, DNS_OK);
    CHECK(got && got != r && got->data != r->data && got->data[0] != r->data[0]);
    if (got) {
        CHECK_INT(got->len[0], 12);
        CHECK(memcmp(got->data[0] + 1, "v=spf1 -all", 11) == 0);
        CHECK(got->data[1] == NULL);
        CHECK_STR(got->qname, "example.com.");
        CHECK(got->canonname == got->qname);
        CHECK_INT(got->answer_len, 12);
        CHECK(got->answer_packet && ((unsigned char *)got->answer_packet)[11] == 0xab);
        CHECK_INT(got->ttl, 60);
        ub_resolve_free(got);
        got = NULL;
    }
    ub_resolve_free(r); /* the cache kept its own copy */

    /* Case and a final dot do not matter; the type does. */
    CHECK(dns_cache_get(c, "EXAMPLE.Com.", 16, 2000, &st, NULL));
    CHECK(!dns_cache_get(c, "example.com", 1, 2000, &st, NULL));
    CHECK(!dns_cache_get(c, "www.example.com", 16, 2000, &st, NULL));

    /* Gone when the TTL has run out (and stays gone). */
    CHECK(!dns_cache_get(c, "example.com", 16, 101000, &st, NULL));
    CHECK(!dns_cache_get(c, "example.com", 16, 2000, &st, NULL));

    /* Long TTLs are capped: a changed record is seen within DNS_CACHE_MAX_TTL_S. */
    r = txt_result("long.example", "x", 86400);
    dns_cache_put(c, "long.example", 16, DNS_OK, r, 0);
    ub_resolve_free(r);
    CHECK(dns_cache_get(c, "long.example", 16, DNS_CACHE_MAX_TTL_S * 1000LL - 1, &st, NULL));
    CHECK(!dns_cache_get(c, "long.example", 16, DNS_CACHE_MAX_TTL_S * 1000LL, &st, NULL));

    /* Negative answers are kept, with the lower cap, and a canonname of their own. */
    r = nx_result("gone.example", 3600);
    dns_cache_put(c, "gone.example", 16, DNS_NXDOMAIN, r, 0);
    ub_resolve_free(r);
    CHECK(dns_cache_get(c, "gone.example", 16, 1000, &st, &got));
    CHECK_INT(st, DNS_NXDOMAIN);
    if (got) {
        CHECK(got->data == NULL);
        CHECK_STR(got->canonname, "other.example");
        ub_resolve_free(got);
        got = NULL;
    }
    CHECK(!dns_cache_get(c, "gone.example", 16, DNS_CACHE_MAX_NEG_TTL_S * 1000LL, &st, NULL));

    /* Never kept: TTL 0, failures, no result. */
    r = txt_result("zero.example", "x", 0);
    dns_cache_put(c, "zero.example", 16, DNS_OK, r, 0);
    dns_cache_put(c, "fail.example", 16, DNS_TEMPFAIL, r, 0);
    dns_cache_put(c, "null.example", 16, DNS_NODATA, NULL, 0);
    ub_resolve_free(r);
    CHECK(!dns_cache_get(c, "zero.example", 16, 0, &st, NULL));
    CHECK(!dns_cache_get(c, "fail.example", 16, 0, &st, NULL));
    CHECK(!dns_cache_get(c, "null.example", 16, 0, &st, NULL));

    /* An answer bigger than DNS_CACHE_MAX_ENTRY_BYTES is not kept; one just under is. */
    char big[DNS_CACHE_MAX_ENTRY_BYTES];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    r = txt_result("big.example", big, 60);
    dns_cache_put(c, "big.example", 16, DNS_OK, r, 0);
    ub_resolve_free(r);
    CHECK(!dns_cache_get(c, "big.example", 16, 0, &st, NULL));
    big[DNS_CACHE_MAX_ENTRY_BYTES - 64] = '\0';
    r = txt_result("fits.example", big, 60);
    dns_cache_put(c, "fits.example", 16, DNS_OK, r, 0);
    ub_resolve_free(r);
    CHECK(dns_cache_get(c, "fits.example", 16, 0, &st, NULL));

    /* More names than slots: the table stays bounded and the newest names are there. */
    char name[64];
    for (int i = 0; i < 4 * DNS_CACHE_SLOTS; i++) {
        snprintf(name, sizeof name, "n%d.example", i);
        r = txt_result(name, "x", 30);
        dns_cache_put(c, name, 16, DNS_OK, r, 0);
        ub_resolve_free(r);
    }
    snprintf(name, sizeof name, "n%d.example", 4 * DNS_CACHE_SLOTS - 1);
    CHECK(dns_cache_get(c, name, 16, 0, &st, NULL));

    /* Clearing empties it. */
    dns_cache_clear(c);
    CHECK(!dns_cache_get(c, name, 16, 0, &st, NULL));

    dns_cache_free(c);
    dns_cache_free(NULL);
    return CHECK_DONE();
}
