/* Per-thread answer cache in front of libunbound; see dns_cache.h for why. */
#include "auth/dns_cache.h"
#include "core/hash.h"
#include "core/xalloc.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <unbound.h>

struct dns_cache_entry {
    char *name; /* lower case, without a trailing dot; NULL when the slot is empty */
    int rrtype;
    enum dns_status st;
    long long expires_ms;
    struct ub_result *res;
};

struct dns_cache {
    struct dns_cache_entry slot[DNS_CACHE_SLOTS];
};

/* DNS names compare case-insensitively and "a.b." is "a.b": the key is lower case without
 * the final dot. Caller frees. */
static char *key_name(const char *name)
{
    size_t n = strlen(name);
    if (n > 0 && name[n - 1] == '.')
        n--;
    char *k = xstrndup(name, n);
    for (char *p = k; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return k;
}

static size_t slot_of(const char *key, int rrtype)
{
    unsigned char type = (unsigned char)rrtype;
    return hash_fnv1a(hash_fnv1a_str(HASH_FNV1A_INIT, key), &type, 1) % DNS_CACHE_SLOTS;
}

static void *memdup(const void *p, size_t n)
{
    void *d = xmalloc(n ? n : 1);
    if (n)
        memcpy(d, p, n);
    return d;
}

/* A deep copy laid out as libunbound lays out its own results, so that ub_resolve_free
 * frees it (every part separately malloc'd; canonname may share qname's string). */
static struct ub_result *copy_result(const struct ub_result *r)
{
    struct ub_result *c = xmalloc(sizeof *c);
    *c = *r;
    c->qname = r->qname ? xstrdup(r->qname) : NULL;
    if (r->canonname == r->qname)
        c->canonname = c->qname;
    else
        c->canonname = r->canonname ? xstrdup(r->canonname) : NULL;
    c->data = NULL;
    c->len = NULL;
    if (r->data) {
        size_t n = 0;
        while (r->data[n])
            n++;
        c->data = xcalloc(n + 1, sizeof *c->data);
        c->len = xcalloc(n + 1, sizeof *c->len);
        for (size_t i = 0; i < n; i++) {
            int len = r->len ? r->len[i] : 0;
            c->data[i] = memdup(r->data[i], (size_t)len);
            c->len[i] = len;
        }
    }
    c->answer_packet = r->answer_packet ? memdup(r->answer_packet, (size_t)r->answer_len) : NULL;
    c->why_bogus = r->why_bogus ? xstrdup(r->why_bogus) : NULL;
    return c;
}

/* What a copy of r holds: the answer packet and the rdata. */
static size_t result_bytes(const struct ub_result *r)
{
    size_t n = r->answer_len > 0 ? (size_t)r->answer_len : 0;
    for (size_t i = 0; r->data && r->data[i]; i++)
        n += r->len && r->len[i] > 0 ? (size_t)r->len[i] : 0;
    return n;
}

static void entry_clear(struct dns_cache_entry *e)
{
    free(e->name);
    if (e->res)
        ub_resolve_free(e->res);
    memset(e, 0, sizeof *e);
}

struct dns_cache *dns_cache_new(void)
{
    return xcalloc(1, sizeof(struct dns_cache));
}

void dns_cache_clear(struct dns_cache *c)
{
    for (size_t i = 0; i < DNS_CACHE_SLOTS; i++)
        entry_clear(&c->slot[i]);
}

void dns_cache_free(struct dns_cache *c)
{
    if (!c)
        return;
    dns_cache_clear(c);
    free(c);
}

void dns_cache_put(struct dns_cache *c, const char *name, int rrtype, enum dns_status st,
                   const struct ub_result *res, long long now_ms)
{
    if (st == DNS_TEMPFAIL || !res || res->ttl <= 0 ||
        result_bytes(res) > DNS_CACHE_MAX_ENTRY_BYTES)
        return;
    int cap = st == DNS_OK ? DNS_CACHE_MAX_TTL_S : DNS_CACHE_MAX_NEG_TTL_S;
    int ttl = res->ttl < cap ? res->ttl : cap;
    char *key = key_name(name);
    struct dns_cache_entry *e = &c->slot[slot_of(key, rrtype)];
    entry_clear(e);
    e->name = key;
    e->rrtype = rrtype;
    e->st = st;
    e->expires_ms = now_ms + (long long)ttl * 1000;
    e->res = copy_result(res);
}

int dns_cache_get(struct dns_cache *c, const char *name, int rrtype, long long now_ms,
                  enum dns_status *st, struct ub_result **out)
{
    char *key = key_name(name);
    struct dns_cache_entry *e = &c->slot[slot_of(key, rrtype)];
    int hit = e->name && e->rrtype == rrtype && strcmp(e->name, key) == 0;
    free(key);
    if (!hit)
        return 0;
    if (now_ms >= e->expires_ms) {
        entry_clear(e);
        return 0;
    }
    *st = e->st;
    if (out) {
        /* The TTL the caller sees is what is left of it, as a resolver's cache would say. */
        *out = copy_result(e->res);
        (*out)->ttl = (int)((e->expires_ms - now_ms + 999) / 1000);
    }
    return 1;
}
