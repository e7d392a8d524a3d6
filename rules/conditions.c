/* Rule conditions: parsing from the config and one predicate per field. String comparisons
 * (exact, contains, starts_with, ends_with) ignore ASCII case; regexes (PCRE2) are as written,
 * so (?i) is the operator's choice. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "rules/conditions.h"
#include "lua/lua_fields.h"
#include "core/address.h"
#include "core/cidr.h"
#include "core/headers.h"
#include "core/message.h"
#include "core/verdict.h"
#include "core/xalloc.h"
#include "rules/ruleset.h"

#include <gmime/gmime.h>
#include <lauxlib.h>
#include <lua.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum str_op { OP_EXACT, OP_CONTAINS, OP_STARTS, OP_ENDS, OP_REGEX };
static const char *const op_names[] = {"exact", "contains", "starts_with", "ends_with", "regex"};

struct str_match {
    enum str_op op;
    char *text;
    pcre2_code *re;
};

static const struct {
    const char *name;
    enum cond_field field;
} fields[] = {
    {"sender", COND_SENDER},
    {"helo", COND_HELO},
    {"from", COND_FROM},
    {"header", COND_HEADER},
    {"subject", COND_SUBJECT},
    {"size", COND_SIZE},
    {"client_ip", COND_CLIENT_IP},
    {"tls", COND_TLS},
    {"tls_version", COND_TLS_VERSION},
    {"spf", COND_SPF},
    {"dkim", COND_DKIM},
    {"dmarc", COND_DMARC},
    {"spam", COND_SPAM},
    {"virus", COND_VIRUS},
    {"dmarc_policy", COND_DMARC_POLICY},
};
#define NFIELDS (sizeof fields / sizeof fields[0])

const char *cond_field_name(enum cond_field f)
{
    for (size_t i = 0; i < NFIELDS; i++)
        if (fields[i].field == f)
            return fields[i].name;
    return "?";
}

/* --- parsing ----------------------------------------------------------------------------- */

/* One string alternative at the top of the stack: "text" or { op = "text" }. */
static int parse_str_alt(lua_State *L, const char *what, struct str_match *sm, char *err,
                         size_t errlen)
{
    if (lua_type(L, -1) == LUA_TSTRING) {
        sm->op = OP_EXACT;
        sm->text = xstrdup(lua_tostring(L, -1));
        return 0;
    }
    if (!lua_istable(L, -1)) {
        snprintf(err, errlen,
                 "%s: expected a string or { contains|starts_with|ends_with|regex = "
                 "\"...\" }, got %s",
                 what, luaL_typename(L, -1));
        return -1;
    }
    int t = lua_gettop(L);
    static const char *const keys[] = {"exact",     "contains", "starts_with",
                                       "ends_with", "regex",    NULL};
    if (lf_check_keys(L, t, what, keys, err, errlen) < 0)
        return -1;
    int found = 0;
    for (int op = 0; op < 5; op++) {
        char *v = NULL;
        if (lf_string(L, t, op_names[op], false, &v, err, errlen) < 0)
            return -1;
        if (!v)
            continue;
        if (found++) {
            free(v);
            snprintf(err, errlen, "%s: give one operator per alternative", what);
            return -1;
        }
        sm->op = (enum str_op)op;
        sm->text = v;
    }
    if (!found) {
        snprintf(err, errlen, "%s: empty string operator table", what);
        return -1;
    }
    if (sm->op == OP_REGEX) {
        int code;
        PCRE2_SIZE off;
        sm->re = pcre2_compile((PCRE2_SPTR)sm->text, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &code, &off,
                               NULL);
        if (!sm->re) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(code, msg, sizeof msg);
            snprintf(err, errlen, "%s: bad regex \"%s\" at offset %zu: %s", what, sm->text,
                     (size_t)off, (char *)msg);
            return -1;
        }
    }
    return 0;
}

/* The value at the top of the stack as a list of alternatives: calls each(L, i) with each
 * alternative on top. A table that is not a sequence counts as one alternative. */
static int for_each_alt(lua_State *L, int (*each)(lua_State *, void *, size_t), void *arg)
{
    if (lua_istable(L, -1) && lua_rawlen(L, -1) > 0) {
        size_t n = (size_t)lua_rawlen(L, -1);
        for (size_t i = 0; i < n; i++) {
            lua_rawgeti(L, -1, (lua_Integer)i + 1);
            int rc = each(L, arg, i);
            lua_pop(L, 1);
            if (rc < 0)
                return -1;
        }
        return 0;
    }
    return each(L, arg, 0);
}

struct parse_arg {
    struct condition *c;
    const char *what;
    char *err;
    size_t errlen;
};

static int each_str(lua_State *L, void *arg, size_t i)
{
    struct parse_arg *a = arg;
    struct condition *c = a->c;
    c->strs = xrealloc(c->strs, (c->nstrs + 1) * sizeof *c->strs);
    memset(&c->strs[c->nstrs], 0, sizeof *c->strs);
    int rc = parse_str_alt(L, a->what, &c->strs[c->nstrs], a->err, a->errlen);
    c->nstrs++; /* counted even on error so free releases it */
    return rc;
}

static int each_addr(lua_State *L, void *arg, size_t i)
{
    struct parse_arg *a = arg;
    struct condition *c = a->c;
    if (lua_type(L, -1) != LUA_TSTRING) {
        snprintf(a->err, a->errlen, "%s: expected an address, domain or .domain string, got %s",
                 a->what, luaL_typename(L, -1));
        return -1;
    }
    const char *s = lua_tostring(L, -1);
    if (c->field == COND_SENDER && strcmp(s, "<>") == 0) {
        c->null_sender = true;
        return 0;
    }
    c->addrs = xrealloc(c->addrs, (c->naddrs + 1) * sizeof *c->addrs);
    char e[256];
    if (rcpt_cond_parse(s, &c->addrs[c->naddrs], e, sizeof e) < 0) {
        snprintf(a->err, a->errlen, "%s: %s", a->what, e);
        return -1;
    }
    c->naddrs++;
    return 0;
}

static int each_cidr(lua_State *L, void *arg, size_t i)
{
    struct parse_arg *a = arg;
    struct condition *c = a->c;
    const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    const char *why = "expected a string";
    c->cidrs = xrealloc(c->cidrs, (c->ncidrs + 1) * sizeof *c->cidrs);
    if (!s || cidr_parse(s, &c->cidrs[c->ncidrs], &why) < 0) {
        snprintf(a->err, a->errlen,
                 "%s: '%s' is not an IPv4/IPv6 network like \"192.0.2.0/24\" (%s)", a->what,
                 s ? s : luaL_typename(L, -1), why);
        return -1;
    }
    c->ncidrs++;
    return 0;
}

static int each_value(lua_State *L, void *arg, size_t i)
{
    struct parse_arg *a = arg;
    struct condition *c = a->c;
    const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    int ok;
    if (c->field == COND_DMARC_POLICY) {
        enum dmarc_policy p;
        ok = s && dmarc_policy_parse(s, &p) == 0;
        if (ok)
            c->values[c->nvalues] = (int)p;
    } else {
        enum verdict v;
        ok = s && verdict_parse(s, &v) == 0;
        if (ok)
            c->values[c->nvalues] = (int)v;
    }
    if (!ok || c->nvalues >= 7) {
        snprintf(a->err, a->errlen, "%s: '%s' is not one of %s", a->what,
                 s ? s : luaL_typename(L, -1),
                 c->field == COND_DMARC_POLICY ? "NONE, QUARANTINE, REJECT"
                                               : "PASS, FAIL, GRAY, PROCESSING_FAILED");
        return -1;
    }
    c->nvalues++;
    return 0;
}

static int parse_size(lua_State *L, struct condition *c, const char *what, char *err, size_t errlen)
{
    c->gt = c->lt = -1;
    static const char *const keys[] = {"gt", "lt", NULL};
    int t = lua_gettop(L);
    if (!lua_istable(L, t)) {
        snprintf(err, errlen, "%s: expected { gt = N, lt = N }", what);
        return -1;
    }
    if (lf_check_keys(L, t, what, keys, err, errlen) < 0 ||
        lf_integer(L, t, "gt", 0, 1LL << 50, &c->gt, err, errlen) < 0 ||
        lf_integer(L, t, "lt", 0, 1LL << 50, &c->lt, err, errlen) < 0)
        return -1;
    if (c->gt < 0 && c->lt < 0) {
        snprintf(err, errlen, "%s: give gt and/or lt", what);
        return -1;
    }
    return 0;
}

static int parse_one(lua_State *L, struct condition *c, const char *what, char *err, size_t errlen)
{
    struct parse_arg a = {c, what, err, errlen};
    switch (c->field) {
    case COND_SENDER:
    case COND_FROM:
        return for_each_alt(L, each_addr, &a);
    case COND_HELO:
    case COND_SUBJECT:
    case COND_TLS_VERSION:
    case COND_HEADER:
        return for_each_alt(L, each_str, &a);
    case COND_SIZE:
        return parse_size(L, c, what, err, errlen);
    case COND_CLIENT_IP:
        return for_each_alt(L, each_cidr, &a);
    case COND_TLS:
        if (!lua_isboolean(L, -1)) {
            snprintf(err, errlen, "%s: expected true or false", what);
            return -1;
        }
        c->flag = lua_toboolean(L, -1);
        return 0;
    default:
        return for_each_alt(L, each_value, &a);
    }
}

static struct condition *new_cond(struct cond_list *out, enum cond_field f)
{
    out->items = xrealloc(out->items, (out->n + 1) * sizeof *out->items);
    struct condition *c = &out->items[out->n++];
    memset(c, 0, sizeof *c);
    c->field = f;
    c->gt = c->lt = -1;
    return c;
}

/* header = { ["X-Name"] = alternatives, ... }: one condition per header name. */
static int parse_headers(lua_State *L, struct cond_list *out, const char *what, char *err,
                         size_t errlen)
{
    if (!lua_istable(L, -1)) {
        snprintf(err, errlen, "%s.header: expected { [\"X-Name\"] = \"value\" }", what);
        return -1;
    }
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        if (lua_type(L, -2) != LUA_TSTRING) {
            lua_pop(L, 2);
            snprintf(err, errlen, "%s.header: keys must be header names", what);
            return -1;
        }
        const char *name = lua_tostring(L, -2);
        char label[128];
        snprintf(label, sizeof label, "%s.header[\"%s\"]", what, name);
        struct condition *c = new_cond(out, COND_HEADER);
        c->header = xstrdup(name);
        if (parse_one(L, c, label, err, errlen) < 0) {
            lua_pop(L, 2);
            return -1;
        }
        lua_pop(L, 1);
    }
    return 0;
}

/* Lua iterates tables in no fixed order: conditions are kept in field order instead, so
 * evaluation traces and `sluice check` read the same every time. */
static int cmp_cond(const void *a, const void *b)
{
    const struct condition *x = a, *y = b;
    if (x->field != y->field)
        return x->field < y->field ? -1 : 1;
    return x->header && y->header ? strcasecmp(x->header, y->header) : 0;
}

int cond_list_parse(lua_State *L, int idx, const char *what, struct cond_list *out, char *err,
                    size_t errlen)
{
    idx = lua_absindex(L, idx);
    if (!lua_istable(L, idx)) {
        snprintf(err, errlen, "'%s' must be a table of conditions", what);
        return -1;
    }
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
        size_t f = 0;
        while (key && f < NFIELDS && strcmp(fields[f].name, key) != 0)
            f++;
        if (!key || f == NFIELDS) {
            snprintf(err, errlen,
                     "%s: unknown condition '%s' (known: sender, helo, from, header, subject, "
                     "size, client_ip, tls, tls_version, spf, dkim, dmarc, spam, virus, "
                     "dmarc_policy)",
                     what, key ? key : "?");
            lua_pop(L, 2);
            return -1;
        }
        char label[96];
        snprintf(label, sizeof label, "%s.%s", what, key);
        int rc = fields[f].field == COND_HEADER
                     ? parse_headers(L, out, what, err, errlen)
                     : parse_one(L, new_cond(out, fields[f].field), label, err, errlen);
        lua_pop(L, 1);
        if (rc < 0) {
            lua_pop(L, 1);
            return -1;
        }
    }
    qsort(out->items, out->n, sizeof *out->items, cmp_cond);
    return 0;
}

void cond_list_free(struct cond_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        struct condition *c = &l->items[i];
        free(c->header);
        for (size_t j = 0; j < c->nstrs; j++) {
            free(c->strs[j].text);
            pcre2_code_free(c->strs[j].re);
        }
        free(c->strs);
        for (size_t j = 0; j < c->naddrs; j++)
            rcpt_cond_free(&c->addrs[j]);
        free(c->addrs);
        free(c->cidrs);
    }
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

/* --- evaluation -------------------------------------------------------------------------- */

static bool str_match_one(const struct str_match *sm, const char *s)
{
    size_t sl = strlen(s), tl = strlen(sm->text);
    switch (sm->op) {
    case OP_EXACT:
        return strcasecmp(s, sm->text) == 0;
    case OP_CONTAINS:
        return strcasestr(s, sm->text) != NULL;
    case OP_STARTS:
        return sl >= tl && strncasecmp(s, sm->text, tl) == 0;
    case OP_ENDS:
        return sl >= tl && strcasecmp(s + sl - tl, sm->text) == 0;
    case OP_REGEX: {
        pcre2_match_data *md = pcre2_match_data_create_from_pattern(sm->re, NULL);
        int rc = pcre2_match(sm->re, (PCRE2_SPTR)s, sl, 0, 0, md, NULL);
        pcre2_match_data_free(md);
        return rc >= 0;
    }
    }
    return false;
}

static bool str_match_any(const struct condition *c, const char *s)
{
    for (size_t i = 0; i < c->nstrs; i++)
        if (str_match_one(&c->strs[i], s))
            return true;
    return false;
}

static bool addr_match_any(const struct condition *c, const char *addr)
{
    for (size_t i = 0; i < c->naddrs; i++)
        if (rcpt_cond_match(&c->addrs[i], addr))
            return true;
    return false;
}

static bool value_in(const struct condition *c, int v)
{
    for (size_t i = 0; i < c->nvalues; i++)
        if (c->values[i] == v)
            return true;
    return false;
}

static bool match_header(const struct condition *c, const struct message *m)
{
    struct buf v = {0};
    bool hit = false;
    for (int nth = 0; !hit && header_find(m->body.data, m->body.len, c->header, nth, &v); nth++) {
        hit = str_match_any(c, buf_cstr(&v));
        buf_reset(&v);
    }
    buf_free(&v);
    return hit;
}

static bool match_subject(const struct condition *c, const struct message *m)
{
    struct buf v = {0};
    bool hit = false;
    if (header_find(m->body.data, m->body.len, "Subject", 0, &v)) {
        /* RFC 2047 encoded words decoded, so operators match what a reader sees. */
        char *decoded = g_mime_utils_header_decode_text(NULL, buf_cstr(&v));
        hit = str_match_any(c, decoded ? decoded : buf_cstr(&v));
        g_free(decoded);
    } else {
        hit = str_match_any(c, "");
    }
    buf_free(&v);
    return hit;
}

struct from_probe {
    const struct condition *c;
    bool hit;
};

static bool probe_author(const char *addr, void *arg)
{
    struct from_probe *p = arg;
    p->hit = address_domain(addr) && addr_match_any(p->c, addr);
    return !p->hit;
}

/* Any author matches: with several From fields or mailboxes, adding one cannot hide the
 * author a rule looks for (DMARC judges them all too; core/headers.h). */
static bool match_from(const struct condition *c, const struct message *m)
{
    struct from_probe p = {c, false};
    headers_each_author(m->body.data, m->body.len, probe_author, &p);
    return p.hit;
}

static bool match_tls_version(const struct condition *c, const struct message *m)
{
    if (!m->env.tls)
        return false;
    /* OpenSSL says "TLSv1.3"; accept "TLS1.3" in configs too. */
    char norm[32];
    snprintf(norm, sizeof norm, "%s", m->env.tls_version);
    char *v = strstr(norm, "TLSv");
    if (v)
        memmove(v + 3, v + 4, strlen(v + 4) + 1);
    return str_match_any(c, m->env.tls_version) || str_match_any(c, norm);
}

static bool cond_holds(const struct condition *c, const struct message *m)
{
    const struct verdicts *v = &m->env.verdicts;
    switch (c->field) {
    case COND_SENDER:
        if (!m->env.mail_from || !m->env.mail_from[0])
            return c->null_sender;
        return addr_match_any(c, m->env.mail_from);
    case COND_HELO:
        return m->env.helo && str_match_any(c, m->env.helo);
    case COND_FROM:
        return match_from(c, m);
    case COND_HEADER:
        return match_header(c, m);
    case COND_SUBJECT:
        return match_subject(c, m);
    case COND_SIZE:
        return (c->gt < 0 || (long long)m->body.len > c->gt) &&
               (c->lt < 0 || (long long)m->body.len < c->lt);
    case COND_CLIENT_IP:
        return cidr_list_match(c->cidrs, c->ncidrs, m->env.client_ip);
    case COND_TLS:
        return m->env.tls == c->flag;
    case COND_TLS_VERSION:
        return match_tls_version(c, m);
    case COND_SPF:
        return value_in(c, (int)v->spf);
    case COND_DKIM:
        return value_in(c, (int)v->dkim);
    case COND_DMARC:
        return value_in(c, (int)v->dmarc);
    case COND_SPAM:
        return value_in(c, (int)v->spam);
    case COND_VIRUS:
        return value_in(c, (int)v->virus);
    case COND_DMARC_POLICY:
        return value_in(c, (int)v->dmarc_policy);
    }
    return false;
}

bool cond_list_all(const struct cond_list *l, const struct message *m,
                   const struct condition **failed)
{
    for (size_t i = 0; i < l->n; i++) {
        if (!cond_holds(&l->items[i], m)) {
            if (failed)
                *failed = &l->items[i];
            return false;
        }
    }
    return true;
}

bool cond_list_any(const struct cond_list *l, const struct message *m, const struct condition **hit)
{
    for (size_t i = 0; i < l->n; i++) {
        if (cond_holds(&l->items[i], m)) {
            if (hit)
                *hit = &l->items[i];
            return true;
        }
    }
    return false;
}

void cond_list_describe(const struct cond_list *l, struct buf *out)
{
    for (size_t i = 0; i < l->n; i++) {
        const struct condition *c = &l->items[i];
        if (i)
            buf_puts(out, "; ");
        if (c->field == COND_HEADER)
            buf_printf(out, "header[%s]=", c->header);
        else
            buf_printf(out, "%s=", cond_field_name(c->field));
        size_t k = 0;
        for (size_t j = 0; j < c->nstrs; j++, k++)
            buf_printf(out, "%s%s%s\"%s\"", k ? "|" : "",
                       c->strs[j].op == OP_EXACT ? "" : op_names[c->strs[j].op],
                       c->strs[j].op == OP_EXACT ? "" : ":", c->strs[j].text);
        if (c->null_sender)
            buf_printf(out, "%s<>", k++ ? "|" : "");
        for (size_t j = 0; j < c->naddrs; j++, k++)
            buf_printf(out, "%s%s", k ? "|" : "", c->addrs[j].text);
        for (size_t j = 0; j < c->ncidrs; j++, k++) {
            char net[64];
            cidr_format(&c->cidrs[j], net, sizeof net);
            buf_printf(out, "%s%s", k ? "|" : "", net);
        }
        for (size_t j = 0; j < c->nvalues; j++, k++)
            buf_printf(out, "%s%s", k ? "|" : "",
                       c->field == COND_DMARC_POLICY
                           ? dmarc_policy_name((enum dmarc_policy)c->values[j])
                           : verdict_name((enum verdict)c->values[j]));
        if (c->field == COND_SIZE) {
            if (c->gt >= 0)
                buf_printf(out, ">%lld", c->gt);
            if (c->lt >= 0)
                buf_printf(out, "%s<%lld", c->gt >= 0 ? "," : "", c->lt);
        }
        if (c->field == COND_TLS)
            buf_puts(out, c->flag ? "true" : "false");
    }
}
