/* Rule conditions: one table of fields (below the kinds and the functions its rows name), each
 * row a name, a kind and the function that reads the field's value from the message. A kind
 * says how alternatives are parsed from the config and described for `sluice check` (string
 * alternatives: rules/str_match.h); the code after the table only iterates it. */
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The values verdict and policy conditions compare (enum verdict, enum dmarc_policy). */
struct value_set {
    int (*parse)(const char *s, int *out);
    const char *(*name)(int v);
    const char *names; /* for "is not one of ..." */
};

struct parse_arg {
    struct condition *c;
    const char *what; /* the label errors start with: "when.helo" */
    char *err;
    size_t errlen;
};

/* A kind of condition: how its alternatives are read from the config and written back for
 * `sluice check`. Verdicts and policies share the functions and differ in their value set. */
struct cond_kind {
    /* Parses one alternative (the value at the top of the stack) into a->c, or the whole
     * value when the kind takes no list of alternatives. */
    int (*parse)(lua_State *L, struct parse_arg *a);
    bool alternatives; /* one or a list of them; else one value (size, tls) */
    void (*describe)(const struct condition *c, struct buf *out);
    const struct value_set *values;
};

/* A row of the field table. */
struct cond_field {
    const char *name;
    const struct cond_kind *kind;
    /* Reads the field's value from the message and tests c's alternatives on it. */
    bool (*holds)(const struct condition *c, const struct message *m);
    /* Fields whose value is not one condition: header = { ["X-Name"] = alternatives } takes
     * one per name. NULL: one condition, parsed by the kind. */
    int (*take)(lua_State *L, const struct cond_field *f, struct cond_list *out, const char *what,
                char *err, size_t errlen);
    size_t verdict; /* verdicts and policies: offsetof(struct verdicts, the field) */
};

/* --- the kinds: parsing and describing their alternatives -------------------------------- */

static int parse_string(lua_State *L, struct parse_arg *a)
{
    return str_list_add(L, &a->c->strs, a->what, a->err, a->errlen);
}

static void describe_strings(const struct condition *c, struct buf *out)
{
    str_list_describe(&c->strs, out);
}

static const struct cond_kind strings = {parse_string, true, describe_strings, NULL};

static int parse_address(lua_State *L, struct parse_arg *a)
{
    struct condition *c = a->c;
    if (lua_type(L, -1) != LUA_TSTRING) {
        snprintf(a->err, a->errlen, "%s: expected an address, domain or .domain string, got %s",
                 a->what, luaL_typename(L, -1));
        return -1;
    }
    const char *s = lua_tostring(L, -1);
    c->addrs = xrealloc(c->addrs, (c->naddrs + 1) * sizeof *c->addrs);
    char e[256];
    if (rcpt_cond_parse(s, &c->addrs[c->naddrs], e, sizeof e) < 0) {
        snprintf(a->err, a->errlen, "%s: %s", a->what, e);
        return -1;
    }
    c->naddrs++;
    return 0;
}

/* The envelope sender may be null: "<>" among the addresses. */
static int parse_sender(lua_State *L, struct parse_arg *a)
{
    if (lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "<>") == 0) {
        a->c->null_sender = true;
        return 0;
    }
    return parse_address(L, a);
}

static void describe_addresses(const struct condition *c, struct buf *out)
{
    size_t k = 0;
    if (c->null_sender)
        buf_printf(out, "%s<>", k++ ? "|" : "");
    for (size_t j = 0; j < c->naddrs; j++, k++)
        buf_printf(out, "%s%s", k ? "|" : "", c->addrs[j].text);
}

static const struct cond_kind addresses = {parse_address, true, describe_addresses, NULL};
static const struct cond_kind senders = {parse_sender, true, describe_addresses, NULL};

static int parse_network(lua_State *L, struct parse_arg *a)
{
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

static void describe_networks(const struct condition *c, struct buf *out)
{
    for (size_t j = 0; j < c->ncidrs; j++) {
        char net[64];
        cidr_format(&c->cidrs[j], net, sizeof net);
        buf_printf(out, "%s%s", j ? "|" : "", net);
    }
}

static const struct cond_kind networks = {parse_network, true, describe_networks, NULL};

static int parse_value(lua_State *L, struct parse_arg *a)
{
    struct condition *c = a->c;
    const struct value_set *vs = c->field->kind->values;
    const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    int v;
    if (!s || vs->parse(s, &v) < 0 || c->nvalues >= 7) {
        snprintf(a->err, a->errlen, "%s: '%s' is not one of %s", a->what,
                 s ? s : luaL_typename(L, -1), vs->names);
        return -1;
    }
    c->values[c->nvalues++] = v;
    return 0;
}

static void describe_values(const struct condition *c, struct buf *out)
{
    for (size_t j = 0; j < c->nvalues; j++)
        buf_printf(out, "%s%s", j ? "|" : "", c->field->kind->values->name(c->values[j]));
}

static int verdict_from(const char *s, int *out)
{
    enum verdict v;
    if (verdict_parse(s, &v) < 0)
        return -1;
    *out = (int)v;
    return 0;
}

static const char *verdict_text(int v)
{
    return verdict_name((enum verdict)v);
}

static int policy_from(const char *s, int *out)
{
    enum dmarc_policy p;
    if (dmarc_policy_parse(s, &p) < 0)
        return -1;
    *out = (int)p;
    return 0;
}

static const char *policy_text(int v)
{
    return dmarc_policy_name((enum dmarc_policy)v);
}

static const struct value_set verdict_set = {verdict_from, verdict_text,
                                             "PASS, FAIL, GRAY, PROCESSING_FAILED"};
static const struct value_set policy_set = {policy_from, policy_text, "NONE, QUARANTINE, REJECT"};
static const struct cond_kind verdicts = {parse_value, true, describe_values, &verdict_set};
static const struct cond_kind policies = {parse_value, true, describe_values, &policy_set};

static int parse_size(lua_State *L, struct parse_arg *a)
{
    struct condition *c = a->c;
    c->gt = c->lt = -1;
    static const char *const keys[] = {"gt", "lt", NULL};
    int t = lua_gettop(L);
    if (!lua_istable(L, t)) {
        snprintf(a->err, a->errlen, "%s: expected { gt = N, lt = N }", a->what);
        return -1;
    }
    if (lf_check_keys(L, t, a->what, keys, a->err, a->errlen) < 0 ||
        lf_integer(L, t, "gt", 0, 1LL << 50, &c->gt, a->err, a->errlen) < 0 ||
        lf_integer(L, t, "lt", 0, 1LL << 50, &c->lt, a->err, a->errlen) < 0)
        return -1;
    if (c->gt < 0 && c->lt < 0) {
        snprintf(a->err, a->errlen, "%s: give gt and/or lt", a->what);
        return -1;
    }
    return 0;
}

static void describe_size(const struct condition *c, struct buf *out)
{
    if (c->gt >= 0)
        buf_printf(out, ">%lld", c->gt);
    if (c->lt >= 0)
        buf_printf(out, "%s<%lld", c->gt >= 0 ? "," : "", c->lt);
}

static const struct cond_kind size_range = {parse_size, false, describe_size, NULL};

static int parse_flag(lua_State *L, struct parse_arg *a)
{
    if (!lua_isboolean(L, -1)) {
        snprintf(a->err, a->errlen, "%s: expected true or false", a->what);
        return -1;
    }
    a->c->flag = lua_toboolean(L, -1);
    return 0;
}

static void describe_flag(const struct condition *c, struct buf *out)
{
    buf_puts(out, c->flag ? "true" : "false");
}

static const struct cond_kind flag = {parse_flag, false, describe_flag, NULL};

/* Parses the value at the top of the stack into c by its field's kind. A kind that takes
 * alternatives takes one or a list of them; a table that is not a sequence counts as one. */
static int parse_condition(lua_State *L, struct condition *c, const char *list, char *err,
                           size_t errlen)
{
    char label[128];
    cond_label(c, list, label, sizeof label);
    struct parse_arg a = {c, label, err, errlen};
    const struct cond_kind *k = c->field->kind;
    if (!k->alternatives || !lua_istable(L, -1) || lua_rawlen(L, -1) == 0)
        return k->parse(L, &a);
    size_t n = (size_t)lua_rawlen(L, -1);
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, -1, (lua_Integer)i + 1);
        int rc = k->parse(L, &a);
        lua_pop(L, 1);
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* --- the fields: reading the message's value ---------------------------------------------- */

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

static bool holds_sender(const struct condition *c, const struct message *m)
{
    if (!m->env.mail_from || !m->env.mail_from[0])
        return c->null_sender;
    return addr_match_any(c, m->env.mail_from);
}

static bool holds_helo(const struct condition *c, const struct message *m)
{
    return m->env.helo && str_list_match(&c->strs, m->env.helo);
}

static bool holds_header(const struct condition *c, const struct message *m)
{
    struct buf v = {0};
    bool hit = false;
    for (int nth = 0; !hit && header_find(m->body.data, m->body.len, c->key, nth, &v); nth++) {
        hit = str_list_match(&c->strs, buf_cstr(&v));
        buf_reset(&v);
    }
    buf_free(&v);
    return hit;
}

static bool holds_subject(const struct condition *c, const struct message *m)
{
    struct buf v = {0};
    bool hit = false;
    if (header_find(m->body.data, m->body.len, "Subject", 0, &v)) {
        /* RFC 2047 encoded words decoded, so operators match what a reader sees. */
        char *decoded = g_mime_utils_header_decode_text(NULL, buf_cstr(&v));
        hit = str_list_match(&c->strs, decoded ? decoded : buf_cstr(&v));
        g_free(decoded);
    } else {
        hit = str_list_match(&c->strs, "");
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
static bool holds_from(const struct condition *c, const struct message *m)
{
    struct from_probe p = {c, false};
    headers_each_author(m->body.data, m->body.len, probe_author, &p);
    return p.hit;
}

static bool holds_tls_version(const struct condition *c, const struct message *m)
{
    if (!m->env.tls)
        return false;
    /* OpenSSL says "TLSv1.3"; accept "TLS1.3" in configs too. */
    char norm[32];
    snprintf(norm, sizeof norm, "%s", m->env.tls_version);
    char *v = strstr(norm, "TLSv");
    if (v)
        memmove(v + 3, v + 4, strlen(v + 4) + 1);
    return str_list_match(&c->strs, m->env.tls_version) || str_list_match(&c->strs, norm);
}

static bool holds_size(const struct condition *c, const struct message *m)
{
    return (c->gt < 0 || (long long)m->body.len > c->gt) &&
           (c->lt < 0 || (long long)m->body.len < c->lt);
}

static bool holds_client_ip(const struct condition *c, const struct message *m)
{
    return cidr_list_match(c->cidrs, c->ncidrs, m->env.client_ip);
}

static bool holds_tls(const struct condition *c, const struct message *m)
{
    return m->env.tls == c->flag;
}

static bool holds_verdict(const struct condition *c, const struct message *m)
{
    const char *v = (const char *)&m->env.verdicts + c->field->verdict;
    return value_in(c, (int)*(const enum verdict *)v);
}

static bool holds_policy(const struct condition *c, const struct message *m)
{
    const char *v = (const char *)&m->env.verdicts + c->field->verdict;
    return value_in(c, (int)*(const enum dmarc_policy *)v);
}

static struct condition *new_cond(struct cond_list *out, const struct cond_field *f)
{
    out->items = xrealloc(out->items, (out->n + 1) * sizeof *out->items);
    struct condition *c = &out->items[out->n++];
    memset(c, 0, sizeof *c);
    c->field = f;
    c->gt = c->lt = -1;
    return c;
}

/* header = { ["X-Name"] = alternatives, ... }: one condition per header name. */
static int take_headers(lua_State *L, const struct cond_field *f, struct cond_list *out,
                        const char *what, char *err, size_t errlen)
{
    if (!lua_istable(L, -1)) {
        snprintf(err, errlen, "%s.%s: expected { [\"X-Name\"] = \"value\" }", what, f->name);
        return -1;
    }
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        if (lua_type(L, -2) != LUA_TSTRING) {
            lua_pop(L, 2);
            snprintf(err, errlen, "%s.%s: keys must be header names", what, f->name);
            return -1;
        }
        struct condition *c = new_cond(out, f);
        c->key = xstrdup(lua_tostring(L, -2));
        if (parse_condition(L, c, what, err, errlen) < 0) {
            lua_pop(L, 2);
            return -1;
        }
        lua_pop(L, 1);
    }
    return 0;
}

/* --- the field table ---------------------------------------------------------------------- */

/* In this order conditions are kept, checked and listed ("known: ..."). */
static const struct cond_field fields[] = {
    {"sender", &senders, holds_sender, NULL, 0},
    {"helo", &strings, holds_helo, NULL, 0},
    {"from", &addresses, holds_from, NULL, 0},
    {"header", &strings, holds_header, take_headers, 0},
    {"subject", &strings, holds_subject, NULL, 0},
    {"size", &size_range, holds_size, NULL, 0},
    {"client_ip", &networks, holds_client_ip, NULL, 0},
    {"tls", &flag, holds_tls, NULL, 0},
    {"tls_version", &strings, holds_tls_version, NULL, 0},
    {"spf", &verdicts, holds_verdict, NULL, offsetof(struct verdicts, spf)},
    {"dkim", &verdicts, holds_verdict, NULL, offsetof(struct verdicts, dkim)},
    {"dmarc", &verdicts, holds_verdict, NULL, offsetof(struct verdicts, dmarc)},
    {"spam", &verdicts, holds_verdict, NULL, offsetof(struct verdicts, spam)},
    {"virus", &verdicts, holds_verdict, NULL, offsetof(struct verdicts, virus)},
    {"dmarc_policy", &policies, holds_policy, NULL, offsetof(struct verdicts, dmarc_policy)},
};
#define NFIELDS (sizeof fields / sizeof fields[0])

size_t cond_nfields(void)
{
    return NFIELDS;
}

const char *cond_field_name(size_t i)
{
    return i < NFIELDS ? fields[i].name : NULL;
}

int cond_label(const struct condition *c, const char *list, char *out, size_t len)
{
    if (c->key)
        return snprintf(out, len, "%s.%s[\"%s\"]", list, c->field->name, c->key);
    return snprintf(out, len, "%s.%s", list, c->field->name);
}

/* --- condition lists ---------------------------------------------------------------------- */

/* Lua iterates tables in no fixed order: conditions are kept in table order instead, so
 * evaluation traces and `sluice check` read the same every time. */
static int cmp_cond(const void *a, const void *b)
{
    const struct condition *x = a, *y = b;
    if (x->field != y->field)
        return x->field < y->field ? -1 : 1;
    return x->key && y->key ? strcasecmp(x->key, y->key) : 0;
}

static int take_one(lua_State *L, const struct cond_field *f, struct cond_list *out,
                    const char *what, char *err, size_t errlen)
{
    return parse_condition(L, new_cond(out, f), what, err, errlen);
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
            struct buf known = {0};
            for (size_t i = 0; i < NFIELDS; i++)
                buf_printf(&known, "%s%s", i ? ", " : "", fields[i].name);
            snprintf(err, errlen, "%s: unknown condition '%s' (known: %s)", what, key ? key : "?",
                     buf_cstr(&known));
            buf_free(&known);
            lua_pop(L, 2);
            return -1;
        }
        int rc =
            (fields[f].take ? fields[f].take : take_one)(L, &fields[f], out, what, err, errlen);
        lua_pop(L, 1);
        if (rc < 0) {
            lua_pop(L, 1);
            return -1;
        }
    }
    if (out->n > 1) /* qsort wants an array, even of nothing */
        qsort(out->items, out->n, sizeof *out->items, cmp_cond);
    return 0;
}

void cond_list_free(struct cond_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        struct condition *c = &l->items[i];
        free(c->key);
        str_list_free(&c->strs);
        for (size_t j = 0; j < c->naddrs; j++)
            rcpt_cond_free(&c->addrs[j]);
        free(c->addrs);
        free(c->cidrs);
    }
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

bool cond_list_all(const struct cond_list *l, const struct message *m,
                   const struct condition **failed)
{
    for (size_t i = 0; i < l->n; i++) {
        if (!l->items[i].field->holds(&l->items[i], m)) {
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
        if (l->items[i].field->holds(&l->items[i], m)) {
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
        if (c->key)
            buf_printf(out, "%s[%s]=", c->field->name, c->key);
        else
            buf_printf(out, "%s=", c->field->name);
        c->field->kind->describe(c, out);
    }
}
