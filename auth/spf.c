/* SPF with libspf2, its lookups answered by auth/dns through a custom SPF_dns_server_t.
 *
 * The record is fetched and interpreted with SPF_server_get_record() and SPF_record_interpret()
 * instead of SPF_request_query_mailfrom(), because the latter passes every loopback client
 * (127.0.0.0/8, ::1) without looking at the record: here a loopback client matches only what
 * the record says (ip4:127.0.0.1, a, ...), like any other address. */
#include "auth/auth.h"
#include "auth/dns.h"
#include "core/log.h"
#include "core/xalloc.h"

#include <netinet/in.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
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

static SPF_dns_rr_t *layer_lookup(SPF_dns_server_t *srv, const char *domain, ns_type type,
                                  int should_cache)
{
    (void)should_cache;
    struct ub_result *res = NULL;
    switch (dns_query(domain, (int)type, &res)) {
    case DNS_TEMPFAIL:
        return SPF_dns_rr_new_init(srv, domain, type, 0, TRY_AGAIN);
    case DNS_NXDOMAIN:
        ub_resolve_free(res);
        return SPF_dns_rr_new_init(srv, domain, type, 0, HOST_NOT_FOUND);
    case DNS_NODATA:
        ub_resolve_free(res);
        return SPF_dns_rr_new_init(srv, domain, type, 0, NO_DATA);
    case DNS_OK:
        break;
    }
    SPF_dns_rr_t *rr = SPF_dns_rr_new_init(srv, domain, type, res->ttl, NETDB_SUCCESS);
    if (!rr) {
        ub_resolve_free(res);
        return NULL;
    }
    int n = 0;
    char name[NS_MAXDNAME + 1];
    if (type == ns_t_txt || type == ns_t_spf) {
        size_t count;
        char **txt = dns_txt_strings(res, &count);
        for (size_t i = 0; i < count; i++) {
            if (fill_rr(rr, n, txt[i], strlen(txt[i]) + 1) == 0)
                n++;
            free(txt[i]);
        }
        free(txt);
    } else {
        for (int i = 0; res->data[i]; i++) {
            const unsigned char *d = (const unsigned char *)res->data[i];
            size_t len = (size_t)res->len[i];
            int ok = -1;
            if (type == ns_t_a && len == 4)
                ok = fill_rr(rr, n, d, 4);
            else if (type == ns_t_aaaa && len == 16)
                ok = fill_rr(rr, n, d, 16);
            else if (type == ns_t_mx && len > 2 &&
                     wire_name(d + 2, len - 2, name, sizeof name) == 0)
                ok = fill_rr(rr, n, name, strlen(name) + 1);
            else if (type == ns_t_ptr && wire_name(d, len, name, sizeof name) == 0)
                ok = fill_rr(rr, n, name, strlen(name) + 1);
            if (ok == 0)
                n++;
        }
    }
    rr->num_rr = n;
    if (n == 0)
        rr->herrno = NO_DATA;
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
    default: /* SPF_RESULT_INVALID: the library gave up */
        return err == SPF_E_DNS_ERROR ? SPF_RES_TEMPERROR : SPF_RES_PERMERROR;
    }
}

static int set_ip(SPF_request_t *req, const char *ip)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, ip, &a4) == 1)
        return SPF_request_set_ipv4(req, a4) == SPF_E_SUCCESS ? 0 : -1;
    if (inet_pton(AF_INET6, ip, &a6) == 1)
        return SPF_request_set_ipv6(req, a6) == SPF_E_SUCCESS ? 0 : -1;
    return -1;
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

    SPF_dns_server_t *layer = xcalloc(1, sizeof *layer);
    layer->lookup = layer_lookup;
    layer->name = "sluice";
    SPF_server_t *srv = SPF_server_new_dns(layer, 0);
    SPF_request_t *req = SPF_request_new(srv);
    SPF_response_t *resp = SPF_response_new(req);
    SPF_record_t *rec = NULL;

    if (set_ip(req, ip) < 0) {
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
    req->cur_dom = a->spf_helo ? req->helo_dom : req->env_from_dp;

    SPF_errcode_t err = SPF_server_get_record(srv, req, resp, &rec);
    const char *syntax = err == SPF_E_NOT_SPF ? compile_error(resp) : NULL;
    if (syntax) {
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
        if (a->spf == SPF_RES_TEMPERROR)
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
    free(layer);
}

const char *spf_res_name(enum spf_res r)
{
    static const char *const names[] = {"none",     "neutral",   "pass",     "fail",
                                        "softfail", "temperror", "permerror"};
    return (unsigned)r < sizeof names / sizeof *names ? names[r] : "none";
}
