/* SPF with libspf2, its lookups answered by auth/dns through a custom SPF_dns_server_t.
 *
 * The record is fetched and interpreted with SPF_server_get_record() and SPF_record_interpret()
 * instead of SPF_request_query_mailfrom(), because the latter passes every loopback client
 * (127.0.0.0/8, ::1) without looking at the record: here a loopback client matches only what
 * the record says (ip4:127.0.0.1, a, ...), like any other address. */
#include "auth/auth.h"
#include "auth/dns.h"
#include "auth/spf_syntax.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/xalloc.h"

#include <netinet/in.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <ctype.h>
#include <stdbool.h>
#include <strings.h>
#include <netdb.h>
#include <pthread.h>
#include <spf2/spf.h>
#include <spf2/spf_dns.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unbound.h>

/* Decodes an uncompressed wire-format name (as libunbound gives rdata) into dotted text
 * without the final dot. Returns 0, or -1 when malformed. */
static int wire_name(const unsigned char *p, size_t len, char *out, size_t outlen)
{
    size_t pos = 0, o = 0;
    while (pos < len) {
        size_t l = p[pos++];
        if (l == 0) {
            out[o] = '\0';
            return 0;
        }
        if (l > 63 || l > len - pos || o + l + 2 > outlen)
            return -1;
        if (o)
            out[o++] = '.';
        memcpy(out + o, p + pos, l);
        o += l;
        pos += l;
    }
    return -1;
}

static int fill_rr(SPF_dns_rr_t *rr, int idx, const void *data, size_t len)
{
    if (SPF_dns_rr_buf_realloc(rr, idx, len) != SPF_E_SUCCESS)
        return -1;
    memcpy(rr->rr[idx], data, len);
    return 0;
}

#define MAX_DNS_TERMS 10 /* §4.6.4: mechanisms and modifiers that query DNS */
/* §4.6.4: terms whose lookup answers NXDOMAIN or no records (the address lookups of MX and PTR
 * targets belong to their term) */
#define MAX_VOID 2
#define MAX_MX 10  /* §4.6.4: MX records of one mx mechanism */
#define MAX_PTR 10 /* §4.6.4: PTR names looked at */

/* The DNS layer handed to libspf2 for one check. It enforces what libspf2 does not: every SPF
 * record it fetches is validated and rewritten (spf_syntax.h), and the RFC 7208 §4.6.4 limits
 * are counted here, where every lookup passes. The first violation is kept in permerror; from
 * then on every lookup answers "no such name" so that libspf2 winds down quickly, and
 * spf_check() reports permerror. Lookups happen in evaluation order, so a violation reached
 * only after a DNS failure (temperror) does not count. */
struct layer {
    SPF_dns_server_t base; /* first: libspf2 hands &base back to layer_lookup */
    bool v6;               /* the client's family */
    unsigned char addr[16];
    int txt_lookups, terms, voids;
    bool tempfail;   /* a lookup failed before any violation */
    char *permerror; /* the first violation, NULL when none */
    char **follow;   /* targets of MX/PTR answers: their address lookups belong to that term */
    bool *from_ptr;  /* follow[i] came from a PTR answer */
    size_t nfollow;
    /* the macro letters' values but d, which is the domain of each record (fill_txt) */
    struct spf_macro_values mv;
    char ip_macro[72]; /* %{i}: dotted quad, or 32 dotted nibbles */
    char *local;       /* %{l} */
};

static void violation(struct layer *l, const char *fmt, const char *arg)
{
    if (!l->permerror && !l->tempfail)
        l->permerror = xasprintf(fmt, arg);
}

/* 0: name is no MX/PTR target; 1: an MX target; 2: a PTR name (only). */
static int followed(const struct layer *l, const char *name)
{
    int r = 0;
    for (size_t i = 0; i < l->nfollow; i++)
        if (strcasecmp(l->follow[i], name) == 0) {
            if (!l->from_ptr[i])
                return 1;
            r = 2;
        }
    return r;
}

static void add_follow(struct layer *l, const char *name, bool ptr)
{
    l->follow = xrealloc(l->follow, (l->nfollow + 1) * sizeof *l->follow);
    l->from_ptr = xrealloc(l->from_ptr, (l->nfollow + 1) * sizeof *l->from_ptr);
    l->from_ptr[l->nfollow] = ptr;
    l->follow[l->nfollow++] = xstrdup(name);
}

/* The TXT records of res as byte strings (NULs kept: a record with one is a syntax error). */
static void txt_records(const struct ub_result *res, struct buf **out, size_t *count)
{
    size_t n = 0;
    while (res->data && res->data[n])
        n++;
    *out = xcalloc(n + 1, sizeof **out);
    for (size_t i = 0; i < n; i++) {
        const unsigned char *d = (const unsigned char *)res->data[i];
        size_t len = (size_t)res->len[i], pos = 0;
        while (pos < len) {
            size_t l = d[pos++];
            if (l > len - pos)
                l = len - pos;
            buf_append(&(*out)[i], d + pos, l);
            pos += l;
        }
        buf_cstr(&(*out)[i]);
    }
    *count = n;
}

static int fill_txt(struct layer *l, SPF_dns_rr_t *rr, const char *domain,
                    const struct ub_result *res)
{
    struct buf *recs;
    size_t count;
    int n = 0;
    txt_records(res, &recs, &count);
    for (size_t i = 0; i < count; i++) {
        struct buf *r = &recs[i];
        struct buf out = {0};
        char why[160];
        const char *text = r->len ? r->data : "";
        if (spf_is_record(text, r->len)) {
            struct spf_macro_values mv = l->mv;
            mv.d = domain;
            if (spf_record_prepare(text, r->len, l->v6, &mv, &out, why, sizeof why) < 0) {
                char *msg = xasprintf("bad SPF record at %s: %s", domain, why);
                violation(l, "%s", msg);
                free(msg);
                buf_reset(&out);
                buf_puts(&out, "v=spf1");
            }
            text = buf_cstr(&out);
        } else if (memchr(text, '\0', r->len)) {
            text = ""; /* not SPF, and libspf2 wants C strings */
        }
        if (fill_rr(rr, n, text, strlen(text) + 1) == 0)
            n++;
        buf_free(&out);
        buf_free(r);
    }
    free(recs);
    return n;
}

/* RFC 7208 §5.5 for the client: does one of its validated PTR names (the first 10) equal
 * target or end in "." target? DNS errors make a name (or the mechanism) not match; a void PTR
 * lookup is a void lookup of this term. */
static bool ptr_matches(struct layer *l, const char *target)
{
    char rev[80];
    const unsigned char *a = l->addr;
    if (l->v6) {
        size_t o = 0;
        for (int i = 15; i >= 0; i--)
            o += (size_t)snprintf(rev + o, sizeof rev - o, "%x.%x.", a[i] & 15, a[i] >> 4);
        snprintf(rev + o, sizeof rev - o, "ip6.arpa");
    } else {
        snprintf(rev, sizeof rev, "%u.%u.%u.%u.in-addr.arpa", a[3], a[2], a[1], a[0]);
    }
    struct ub_result *res = NULL;
    enum dns_status st = dns_query(rev, ns_t_ptr, &res);
    if (st != DNS_OK) {
        if (st != DNS_TEMPFAIL && ++l->voids > MAX_VOID)
            violation(l, "more than %s void DNS lookups", "2");
        ub_resolve_free(res);
        return false;
    }
    bool match = false;
    size_t tlen = strlen(target);
    char name[NS_MAXDNAME + 1];
    for (int i = 0; !match && i < MAX_PTR && res->data[i]; i++) {
        if (wire_name((const unsigned char *)res->data[i], (size_t)res->len[i], name, sizeof name) <
            0)
            continue;
        size_t nlen = strlen(name);
        if (!(nlen == tlen && strcasecmp(name, target) == 0) &&
            !(nlen > tlen && name[nlen - tlen - 1] == '.' &&
              strcasecmp(name + nlen - tlen, target) == 0))
            continue;
        struct ub_result *ar = NULL;
        if (dns_query(name, l->v6 ? ns_t_aaaa : ns_t_a, &ar) == DNS_OK)
            for (int k = 0; !match && ar->data[k]; k++)
                match = ar->len[k] == (l->v6 ? 16 : 4) &&
                        memcmp(ar->data[k], l->addr, l->v6 ? 16 : 4) == 0;
        ub_resolve_free(ar);
    }
    ub_resolve_free(res);
    return match;
}

static SPF_dns_rr_t *layer_lookup(SPF_dns_server_t *srv, const char *domain, ns_type type,
                                  int should_cache)
{
    (void)should_cache;
    struct layer *l = (struct layer *)srv;
    if (l->permerror || type == ns_t_spf) /* type SPF (99) is not used (RFC 7208 §3.1) */
        return SPF_dns_rr_new_init(srv, domain, type, 0, HOST_NOT_FOUND);

    /* DOMAIN SPF_ANY_SUFFIX: "does DOMAIN have any address record" (a CIDR length of 0) */
    char base[NS_MAXDNAME + 1];
    snprintf(base, sizeof base, "%s", domain);
    size_t blen = strlen(base), slen = strlen(SPF_ANY_SUFFIX);
    bool any = blen > slen && strcasecmp(base + blen - slen, SPF_ANY_SUFFIX) == 0;
    if (any)
        base[blen - slen] = '\0';
    size_t plen = strlen(SPF_PTR_SUFFIX);
    bool ptr = !any && blen > plen && strcasecmp(base + blen - plen, SPF_PTR_SUFFIX) == 0;
    if (ptr)
        base[blen - plen] = '\0';

    int follow = type == ns_t_a || type == ns_t_aaaa ? followed(l, base) : 0;
    /* PTR lookups from libspf2 are %{p} macros (the ptr mechanism is SPF_PTR_SUFFIX): part of
     * the term that uses them, like the address lookups of their names */
    if (type == ns_t_ptr)
        follow = 2;
    bool term = type == ns_t_mx || (type == ns_t_txt && ++l->txt_lookups > 1) ||
                ((type == ns_t_a || type == ns_t_aaaa) && !follow);
    if (term && ++l->terms > MAX_DNS_TERMS) {
        violation(l, "more than %s DNS-querying mechanisms and modifiers", "10");
        if (l->permerror)
            return SPF_dns_rr_new_init(srv, domain, type, 0, HOST_NOT_FOUND);
    }

    if (ptr) {
        if (type != ns_t_a || !ptr_matches(l, base))
            return SPF_dns_rr_new_init(srv, domain, type, 0, NO_DATA);
        static const unsigned char one[4] = {127, 0, 0, 2};
        SPF_dns_rr_t *rr = SPF_dns_rr_new_init(srv, domain, type, 0, NETDB_SUCCESS);
        if (rr && fill_rr(rr, 0, one, 4) == 0)
            rr->num_rr = 1;
        return rr;
    }

    struct ub_result *res = NULL;
    enum dns_status st = dns_query(base, (int)type, &res);
    if (st == DNS_TEMPFAIL && follow == 2) /* §5.5: a PTR name that fails to resolve is skipped */
        return SPF_dns_rr_new_init(srv, domain, type, 0, NO_DATA);
    if (st == DNS_TEMPFAIL) {
        if (!l->permerror)
            l->tempfail = true;
        return SPF_dns_rr_new_init(srv, domain, type, 0, TRY_AGAIN);
    }
    if (st != DNS_OK) {
        ub_resolve_free(res);
        if (!follow && ++l->voids > MAX_VOID)
            violation(l, "more than %s void DNS lookups", "2");
        return SPF_dns_rr_new_init(srv, domain, type, 0,
                                   st == DNS_NXDOMAIN ? HOST_NOT_FOUND : NO_DATA);
    }
    SPF_dns_rr_t *rr = SPF_dns_rr_new_init(srv, domain, type, res->ttl, NETDB_SUCCESS);
    if (!rr) {
        ub_resolve_free(res);
        return NULL;
    }
    int n = 0, total = 0;
    char name[NS_MAXDNAME + 1];
    if (type == ns_t_txt) {
        n = fill_txt(l, rr, base, res);
    } else {
        for (int i = 0; res->data[i]; i++) {
            const unsigned char *d = (const unsigned char *)res->data[i];
            size_t len = (size_t)res->len[i];
            int ok = -1;
            total++;
            /* §4.6.4: PTR names past the first 10 are ignored (libspf2 would give up) */
            if (type == ns_t_ptr && n >= MAX_PTR)
                break;
            if (any && ((type == ns_t_a && len == 4) || (type == ns_t_aaaa && len == 16))) {
                /* the client's own address: matches at any CIDR length */
                if (n == 0 && (type == ns_t_aaaa) == l->v6)
                    ok = fill_rr(rr, n, l->addr, l->v6 ? 16 : 4);
            } else if (type == ns_t_a && len == 4) {
                ok = fill_rr(rr, n, d, 4);
            } else if (type == ns_t_aaaa && len == 16) {
                ok = fill_rr(rr, n, d, 16);
            } else if ((type == ns_t_mx && len > 2 &&
                        wire_name(d + 2, len - 2, name, sizeof name) == 0) ||
                       (type == ns_t_ptr && wire_name(d, len, name, sizeof name) == 0)) {
                for (char *c = name; *c; c++)
                    *c = (char)tolower((unsigned char)*c);
                add_follow(l, name, type == ns_t_ptr);
                if (any)
                    strncat(name, SPF_ANY_SUFFIX, sizeof name - strlen(name) - 1);
                ok = fill_rr(rr, n, name, strlen(name) + 1);
            }
            if (ok == 0)
                n++;
        }
    }
    if (type == ns_t_mx && total > MAX_MX)
        violation(l, "more than %s MX records", "10");
    rr->num_rr = n;
    if (n == 0) {
        rr->herrno = NO_DATA;
        if (!follow && ++l->voids > MAX_VOID)
            violation(l, "more than %s void DNS lookups", "2");
    }
    ub_resolve_free(res);
    return rr;
}

static void spf_warning(const char *file, int line, const char *msg)
{
    (void)file;
    (void)line;
    log_msg(LOG_DEBUG, "libspf2: %s", msg);
}

static void spf_init_once(void)
{
    SPF_warning_handler = spf_warning;
}

static void set_reason(struct auth_details *a, const char *fmt, const char *arg)
{
    free(a->spf_reason);
    a->spf_reason = xasprintf(fmt, arg);
}

static enum spf_res map_result(SPF_result_t r, SPF_errcode_t err)
{
    switch (r) {
    case SPF_RESULT_PASS:
        return SPF_RES_PASS;
    case SPF_RESULT_FAIL:
        return SPF_RES_FAIL;
    case SPF_RESULT_SOFTFAIL:
        return SPF_RES_SOFTFAIL;
    case SPF_RESULT_NEUTRAL:
        return SPF_RES_NEUTRAL;
    case SPF_RESULT_NONE:
        return SPF_RES_NONE;
    case SPF_RESULT_TEMPERROR:
        return SPF_RES_TEMPERROR;
    case SPF_RESULT_PERMERROR:
        return SPF_RES_PERMERROR;
    case SPF_RESULT_INVALID:
        /* The library gave up: on a DNS failure that is temperror (§4.4), on anything else
         * (its own limits, a record it could not compile, no memory) permerror. */
        return err == SPF_E_DNS_ERROR ? SPF_RES_TEMPERROR : SPF_RES_PERMERROR;
    }
    return SPF_RES_PERMERROR; /* a value this libspf2 does not define */
}

/* An IPv4-mapped IPv6 client (::ffff:a.b.c.d) is the IPv4 client a.b.c.d (RFC 7208 §5). */
static int set_ip(SPF_request_t *req, struct layer *l, const char *ip)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET6, ip, &a6) == 1 && IN6_IS_ADDR_V4MAPPED(&a6)) {
        memcpy(&a4, a6.s6_addr + 12, 4);
    } else if (inet_pton(AF_INET6, ip, &a6) == 1) {
        l->v6 = true;
        memcpy(l->addr, &a6, 16);
        for (int i = 0; i < 32; i++) {
            unsigned nib = (a6.s6_addr[i / 2] >> (i % 2 ? 0 : 4)) & 0xf;
            l->ip_macro[2 * i] = "0123456789abcdef"[nib];
            l->ip_macro[2 * i + 1] = i < 31 ? '.' : '\0';
        }
        return SPF_request_set_ipv6(req, a6) == SPF_E_SUCCESS ? 0 : -1;
    } else if (inet_pton(AF_INET, ip, &a4) != 1) {
        return -1;
    }
    memcpy(l->addr, &a4, 4);
    inet_ntop(AF_INET, &a4, l->ip_macro, sizeof l->ip_macro);
    return SPF_request_set_ipv4(req, a4) == SPF_E_SUCCESS ? 0 : -1;
}

/* A HELO name that can carry an SPF record: a dotted domain, not an address literal. */
static int helo_is_domain(const char *h)
{
    if (!h || !*h || h[0] == '[' || !strchr(h, '.'))
        return 0;
    return strspn(h, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.") ==
           strlen(h);
}

/* libspf2 reports a v=spf1 record that does not compile as "no SPF record" (SPF_E_NOT_SPF)
 * and keeps the compiler's error in the response: that is a permerror (RFC 7208 §4.6). */
static const char *compile_error(SPF_response_t *resp)
{
    for (int i = 0; i < SPF_response_messages(resp); i++) {
        SPF_error_t *e = SPF_response_message(resp, i);
        if (e && SPF_error_code(e) != SPF_E_NOT_SPF && SPF_error_code(e) != SPF_E_SUCCESS &&
            SPF_error_code(e) != SPF_E_DNS_ERROR)
            return SPF_error_message(e) ? SPF_error_message(e) : SPF_strerror(SPF_error_code(e));
    }
    return NULL;
}

void spf_check(const char *ip, const char *helo, const char *mail_from, struct auth_details *a)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, spf_init_once);

    a->spf = SPF_RES_NONE;
    a->spf_helo = !mail_from || !*mail_from;
    free(a->spf_identity);
    free(a->spf_domain);
    if (a->spf_helo) {
        a->spf_identity = helo ? xasprintf("postmaster@%s", helo) : xstrdup("");
        a->spf_domain = xstrdup(helo ? helo : "");
        if (!helo_is_domain(helo)) {
            set_reason(a, "HELO %s is not a domain", helo ? helo : "(none)");
            return;
        }
    } else {
        a->spf_identity = xstrdup(mail_from);
        const char *at = strrchr(mail_from, '@');
        a->spf_domain = xstrdup(at ? at + 1 : mail_from);
        if (!at || !at[1]) {
            set_reason(a, "MAIL FROM %s has no domain", mail_from);
            return;
        }
    }

    struct layer *layer = xcalloc(1, sizeof *layer);
    layer->base.lookup = layer_lookup;
    layer->base.name = "sluice";
    SPF_server_t *srv = SPF_server_new_dns(&layer->base, 0);
    SPF_request_t *req = SPF_request_new(srv);
    SPF_response_t *resp = SPF_response_new(req);
    SPF_record_t *rec = NULL;

    if (set_ip(req, layer, ip) < 0) {
        a->spf = SPF_RES_PERMERROR;
        set_reason(a, "client address %s is not an IP address", ip);
        goto out;
    }
    if (helo && SPF_request_set_helo_dom(req, helo) != SPF_E_SUCCESS) {
        a->spf = SPF_RES_PERMERROR;
        goto out;
    }
    if (SPF_request_set_env_from(req, a->spf_identity) != 0) {
        a->spf = SPF_RES_PERMERROR;
        set_reason(a, "identity %s is not valid", a->spf_identity);
        goto out;
    }
    req->use_helo = a->spf_helo;
    {
        const char *at = strrchr(a->spf_identity, '@');
        layer->local = at ? xstrndup(a->spf_identity, (size_t)(at - a->spf_identity)) : NULL;
        layer->mv = (struct spf_macro_values){.s = a->spf_identity,
                                              .l = layer->local,
                                              .o = at ? at + 1 : NULL,
                                              .i = layer->ip_macro,
                                              .h = helo,
                                              .v = layer->v6 ? "ip6" : "in-addr"};
    }
    req->cur_dom = a->spf_helo ? req->helo_dom : req->env_from_dp;

    SPF_errcode_t err = SPF_server_get_record(srv, req, resp, &rec);
    const char *syntax = err == SPF_E_NOT_SPF ? compile_error(resp) : NULL;
    if (layer->permerror) {
        a->spf = SPF_RES_PERMERROR;
        set_reason(a, "%s", layer->permerror);
    } else if (syntax) {
        a->spf = SPF_RES_PERMERROR;
        set_reason(a, "bad SPF record: %s", syntax);
    } else if (err == SPF_E_NOT_SPF) {
        a->spf = SPF_RES_NONE;
        set_reason(a, "%s publishes no SPF record", a->spf_domain);
    } else if (err == SPF_E_DNS_ERROR) {
        a->spf = SPF_RES_TEMPERROR;
        set_reason(a, "DNS failure: %s", dns_last_error());
    } else if (err != SPF_E_SUCCESS) {
        a->spf = SPF_RES_PERMERROR;
        set_reason(a, "bad SPF record: %s", SPF_strerror(err));
    } else {
        resp->spf_record_exp = rec; /* where the interpreter finds exp= */
        SPF_record_interpret(rec, req, resp, 0);
        a->spf = map_result(SPF_response_result(resp), SPF_response_errcode(resp));
        if (layer->permerror) {
            a->spf = SPF_RES_PERMERROR;
            set_reason(a, "%s", layer->permerror);
        } else if (a->spf == SPF_RES_TEMPERROR)
            set_reason(a, "DNS failure: %s", dns_last_error());
        else if (a->spf == SPF_RES_PERMERROR)
            set_reason(a, "%s", SPF_strerror(SPF_response_errcode(resp)));
    }
out:
    resp->spf_record_exp = NULL;
    if (rec)
        SPF_record_free(rec);
    SPF_response_free(resp);
    SPF_request_free(req);
    SPF_server_free(srv);
    for (size_t i = 0; i < layer->nfollow; i++)
        free(layer->follow[i]);
    free(layer->follow);
    free(layer->from_ptr);
    free(layer->permerror);
    free(layer->local);
    free(layer);
}

const char *spf_res_name(enum spf_res r)
{
    static const char *const names[] = {"none",     "neutral",   "pass",     "fail",
                                        "softfail", "temperror", "permerror"};
    return (unsigned)r < sizeof names / sizeof *names ? names[r] : "none";
}
