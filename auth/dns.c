/* libunbound behind a synchronous, time-bounded lookup for worker threads. ub_resolve() itself
 * has no deadline (the iterator retries a dead server for a long time), so each lookup runs
 * asynchronously on the context's own resolver thread (ub_ctx_async(ctx, 1)) and the caller
 * waits on ub_fd() until the deadline, then cancels. */
#include "auth/dns.h"
#include "auth/dns_cache.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/xalloc.h"

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unbound.h>

/* One message's checks may spend at most this many timeouts in total, so that an outage
 * costs a bounded time per message however many lookups SPF, DKIM and DMARC need. */
#define DNS_BUDGET_TIMEOUTS 3

struct dns_thread {
    struct ub_ctx *ctx;
    struct dns_cache *cache; /* answers of ctx, served without its resolver thread */
    char *key;               /* the settings ctx was made for */
    long long timeout_ms;
    long long budget_end; /* monotonic ms */
    char last_error[96];
};

static pthread_key_t thread_key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

static void thread_free(void *p)
{
    struct dns_thread *t = p;
    if (!t)
        return;
    if (t->ctx)
        ub_ctx_delete(t->ctx);
    dns_cache_free(t->cache);
    free(t->key);
    free(t);
}

static void make_key(void)
{
    pthread_key_create(&thread_key, thread_free);
}

static struct dns_thread *self(void)
{
    pthread_once(&key_once, make_key);
    struct dns_thread *t = pthread_getspecific(thread_key);
    if (!t) {
        t = xcalloc(1, sizeof *t);
        t->timeout_ms = 2000;
        t->cache = dns_cache_new();
        pthread_setspecific(thread_key, t);
    }
    return t;
}

void dns_thread_cleanup(void)
{
    pthread_once(&key_once, make_key);
    thread_free(pthread_getspecific(thread_key));
    pthread_setspecific(thread_key, NULL);
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "1.2.3.4:53" / "[::1]:53" (validated by the config loader) into unbound's "1.2.3.4@53". */
static char *unbound_addr(const char *hostport)
{
    const char *colon = strrchr(hostport, ':');
    if (!colon)
        return xstrdup(hostport);
    const char *h = hostport;
    size_t hlen = (size_t)(colon - hostport);
    if (h[0] == '[' && hlen >= 2 && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    return xasprintf("%.*s@%s", (int)hlen, h, colon + 1);
}

static struct ub_ctx *make_ctx(const struct dns_cfg *d)
{
    struct ub_ctx *ctx = ub_ctx_create();
    if (!ctx) {
        log_msg(LOG_ERR, "dns: cannot create a libunbound context");
        return NULL;
    }
    /* Test and local resolvers listen on loopback, which unbound skips by default. */
    ub_ctx_set_option(ctx, "do-not-query-localhost:", "no");
    /* After an outage a server marked down is probed again at once rather than skipped for
     * the infra cache's TTL (900 s). */
    ub_ctx_set_option(ctx, "infra-keep-probing:", "yes");
    /* Every query goes to the configured (or system) resolvers, which know the site's reverse
     * zones: libunbound would otherwise answer NXDOMAIN itself for the reverse zones of private
     * (RFC 1918, RFC 4193) and documentation ranges, so an SPF `ptr` or %{p} for a client in
     * 10.0.0.0/8 or 2001:db8::/32 could never match. */
    ub_ctx_set_option(ctx, "unblock-lan-zones:", "yes");
    ub_ctx_set_option(ctx, "insecure-lan-zones:", "yes");
    static const char *const doc_zones[] = {
        "2.0.192.in-addr.arpa. nodefault", "100.51.198.in-addr.arpa. nodefault",
        "113.0.203.in-addr.arpa. nodefault", "8.b.d.0.1.0.0.2.ip6.arpa. nodefault"};
    for (size_t i = 0; i < sizeof doc_zones / sizeof *doc_zones; i++)
        ub_ctx_set_option(ctx, "local-zone:", doc_zones[i]);
    int rc = 0;
    if (d->nservers) {
        for (size_t i = 0; i < d->nservers && rc == 0; i++) {
            char *a = unbound_addr(d->servers[i]);
            rc = ub_ctx_set_fwd(ctx, a);
            if (rc)
                log_msg(LOG_ERR, "dns: server %s: %s", d->servers[i], ub_strerror(rc));
            free(a);
        }
    } else {
        rc = ub_ctx_resolvconf(ctx, NULL);
        if (rc)
            log_msg(LOG_ERR, "dns: reading /etc/resolv.conf: %s", ub_strerror(rc));
    }
    if (rc == 0)
        rc = ub_ctx_async(ctx, 1);
    if (rc) {
        ub_ctx_delete(ctx);
        return NULL;
    }
    return ctx;
}

static char *settings_key(const struct dns_cfg *d)
{
    struct buf b = {0};
    buf_puts(&b, d->nservers ? "fwd" : "resolv.conf");
    for (size_t i = 0; i < d->nservers; i++)
        buf_printf(&b, " %s", d->servers[i]);
    char *k = xstrdup(buf_cstr(&b));
    buf_free(&b);
    return k;
}

void dns_begin(const struct dns_cfg *d)
{
    struct dns_thread *t = self();
    char *key = settings_key(d);
    if (!t->key || strcmp(t->key, key) != 0) {
        if (t->ctx)
            ub_ctx_delete(t->ctx);
        t->ctx = make_ctx(d);
        dns_cache_clear(t->cache);
        free(t->key);
        t->key = key;
    } else {
        free(key);
    }
    t->timeout_ms = d->timeout_ms > 0 ? d->timeout_ms : 2000;
    t->budget_end = now_ms() + DNS_BUDGET_TIMEOUTS * t->timeout_ms;
    t->last_error[0] = '\0';
}

struct pending {
    int done;
    int err;
    struct ub_result *res;
};

static void on_result(void *arg, int err, struct ub_result *res)
{
    struct pending *p = arg;
    p->done = 1;
    p->err = err;
    p->res = res;
}

static atomic_ullong counts[DNS_RESULTS], cache_hits;

void dns_counts(struct dns_counts *out)
{
    for (int i = 0; i < DNS_RESULTS; i++)
        out->queries[i] = atomic_load(&counts[i]);
    out->cache_hits = atomic_load(&cache_hits);
}

const char *dns_result_name(enum dns_result r)
{
    static const char *const names[DNS_RESULTS] = {"ok",      "nxdomain", "nodata",
                                                   "timeout", "servfail", "error"};
    return (unsigned)r < DNS_RESULTS ? names[r] : "other";
}

static enum dns_status fail(struct dns_thread *t, const char *name, const char *why,
                            enum dns_result r)
{
    atomic_fetch_add(&counts[r], 1);
    snprintf(t->last_error, sizeof t->last_error, "%s", why);
    log_msg(LOG_DEBUG, "dns: %s: %s", name, why);
    return DNS_TEMPFAIL;
}

/* Counts an answer (not a failure: fail() counts those). */
static enum dns_status answered(enum dns_status st)
{
    atomic_fetch_add(&counts[st == DNS_OK         ? DNS_RESULT_OK
                             : st == DNS_NXDOMAIN ? DNS_RESULT_NXDOMAIN
                                                  : DNS_RESULT_NODATA],
                     1);
    return st;
}

enum dns_status dns_query(const char *name, int rrtype, struct ub_result **out)
{
    struct dns_thread *t = self();
    if (out)
        *out = NULL;
    if (!t->ctx)
        return fail(t, name, "no resolver", DNS_RESULT_ERROR);
    long long start = now_ms();
    enum dns_status st;
    if (dns_cache_get(t->cache, name, rrtype, start, &st, out)) {
        atomic_fetch_add(&cache_hits, 1);
        return answered(st);
    }
    long long deadline = start + t->timeout_ms;
    if (deadline > t->budget_end)
        deadline = t->budget_end;
    if (deadline <= start)
        return fail(t, name, "timeout", DNS_RESULT_TIMEOUT);

    struct pending p = {0};
    int id = 0;
    int rc = ub_resolve_async(t->ctx, name, rrtype, 1 /* IN */, &p, on_result, &id);
    if (rc == UB_SYNTAX) /* not a valid domain name: no such name can exist */
        return answered(DNS_NXDOMAIN);
    if (rc)
        return fail(t, name, ub_strerror(rc), DNS_RESULT_ERROR);
    while (!p.done) {
        long long left = deadline - now_ms();
        if (left <= 0) {
            ub_cancel(t->ctx, id);
            return fail(t, name, "timeout", DNS_RESULT_TIMEOUT);
        }
        struct pollfd pfd = {.fd = ub_fd(t->ctx), .events = POLLIN};
        int n = poll(&pfd, 1, (int)left);
        if (n > 0 && (rc = ub_process(t->ctx)) != 0) {
            ub_cancel(t->ctx, id);
            return fail(t, name, ub_strerror(rc), DNS_RESULT_ERROR);
        }
    }
    if (p.err) {
        if (p.res)
            ub_resolve_free(p.res);
        if (p.err == UB_SYNTAX)
            return answered(DNS_NXDOMAIN);
        return fail(t, name, ub_strerror(p.err), DNS_RESULT_ERROR);
    }
    if (p.res->rcode == 0)
        st = p.res->havedata ? DNS_OK : DNS_NODATA;
    else if (p.res->rcode == 3)
        st = DNS_NXDOMAIN;
    else {
        char why[32];
        snprintf(why, sizeof why, "%s", p.res->rcode == 2 ? "SERVFAIL" : "rcode error");
        ub_resolve_free(p.res);
        return fail(t, name, why, DNS_RESULT_SERVFAIL);
    }
    dns_cache_put(t->cache, name, rrtype, st, p.res, now_ms());
    if (out)
        *out = p.res;
    else
        ub_resolve_free(p.res);
    return answered(st);
}

char **dns_txt_strings(const struct ub_result *res, size_t *count)
{
    size_t n = 0;
    while (res && res->data && res->data[n])
        n++;
    char **out = xcalloc(n + 1, sizeof *out);
    for (size_t i = 0; i < n; i++) {
        const unsigned char *d = (const unsigned char *)res->data[i];
        size_t len = (size_t)res->len[i], pos = 0;
        struct buf b = {0};
        while (pos < len) {
            size_t l = d[pos++];
            if (l > len - pos)
                l = len - pos;
            buf_append(&b, d + pos, l);
            pos += l;
        }
        out[i] = xstrdup(buf_cstr(&b));
        buf_free(&b);
    }
    *count = n;
    return out;
}

const char *dns_last_error(void)
{
    return self()->last_error;
}

int dns_wire_name(const unsigned char *p, size_t len, char *out, size_t outlen)
{
    size_t i = 0, o = 0;
    while (i < len && p[i]) {
        size_t l = p[i++];
        if (l > 63 || i + l > len || o + l + 2 > outlen)
            return -1;
        if (o)
            out[o++] = '.';
        for (size_t k = 0; k < l; k++) {
            unsigned char c = p[i + k];
            if (c <= ' ' || c >= 0x7f || c == '(' || c == ')' || c == '[' || c == ']')
                return -1; /* nothing a Received: header or a log line should carry */
            out[o++] = (char)c;
        }
        i += l;
    }
    out[o] = '\0';
    return o ? 0 : -1;
}
