/* The server { } table: one row per key, one loop that reads and checks them, one place for
 * the defaults. Keys whose value is not a plain integer, string or flag (listen, tls,
 * log_format, xclient) have a parse function of their own, referenced from their row. */
#include "config/server_params.h"
#include "config/config.h"
#include "lua/lua_fields.h"
#include "core/address.h"
#include "core/log.h"
#include "core/sockaddr.h"
#include "core/xalloc.h"
#include "rules/undelivered.h"

#include <lauxlib.h>
#include <lua.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h> /* SOMAXCONN */
#include <unistd.h>

/* --- keys with a parser of their own ------------------------------------------------------ */

static int parse_listen(lua_State *L, int idx, struct server_cfg *s, int line, char *err,
                        size_t errlen)
{
    lua_getfield(L, idx, "listen");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        snprintf(err, errlen, "server: missing required field 'listen'");
        return -1;
    }
    if (lua_type(L, -1) == LUA_TSTRING) { /* listen = "127.0.0.1:25" */
        lua_newtable(L);
        lua_insert(L, -2);
        lua_rawseti(L, -2, 1);
    }
    if (!lua_istable(L, -1) || lua_rawlen(L, -1) == 0) {
        snprintf(err, errlen, "server: 'listen' must be a non-empty list of addresses");
        lua_pop(L, 1);
        return -1;
    }
    size_t n = (size_t)lua_rawlen(L, -1);
    s->listen = xcalloc(n, sizeof *s->listen);
    for (size_t i = 0; i < n; i++) {
        struct listen_cfg *lc = &s->listen[s->nlisten++];
        lc->line = line;
        lua_rawgeti(L, -1, (lua_Integer)i + 1);
        int rc = 0;
        if (lua_type(L, -1) == LUA_TSTRING) {
            lc->address = xstrdup(lua_tostring(L, -1));
        } else if (lua_istable(L, -1)) {
            static const char *const keys[] = {"address", "rule_set", "proxy_protocol", "trusted",
                                               NULL};
            int t = lua_gettop(L);
            if (lf_check_keys(L, t, "listen entry", keys, err, errlen) < 0 ||
                lf_string(L, t, "address", true, &lc->address, err, errlen) < 0 ||
                lf_string(L, t, "rule_set", false, &lc->rule_set, err, errlen) < 0 ||
                lf_bool(L, t, "proxy_protocol", &lc->proxy_protocol, err, errlen) < 0 ||
                lf_cidr_list(L, t, "trusted", "listen entry", &lc->trusted, &lc->ntrusted, err,
                             errlen) < 0)
                rc = -1;
            /* Both or neither: a PROXY listener trusting nobody accepts nothing, and a trusted
             * list without PROXY would silently do nothing. */
            else if (lc->proxy_protocol && lc->ntrusted == 0) {
                snprintf(err, errlen,
                         "listen entry %s: proxy_protocol = true needs a non-empty 'trusted' "
                         "list of balancer addresses",
                         lc->address);
                rc = -1;
            } else if (!lc->proxy_protocol && lc->ntrusted > 0) {
                snprintf(err, errlen,
                         "listen entry %s: 'trusted' applies only with proxy_protocol = true",
                         lc->address);
                rc = -1;
            }
        } else {
            snprintf(err, errlen, "server: listen item %zu must be \"ip:port\" or a table, got %s",
                     i + 1, luaL_typename(L, -1));
            rc = -1;
        }
        lua_pop(L, 1);
        struct sockaddr_storage ss;
        socklen_t sl;
        if (rc == 0 && sockaddr_parse(lc->address, &ss, &sl) < 0) {
            snprintf(err, errlen,
                     "server: listen address '%s' must be numeric \"ip:port\" or \"[ipv6]:port\"",
                     lc->address);
            rc = -1;
        }
        if (rc < 0) {
            lua_pop(L, 1);
            return -1;
        }
    }
    lua_pop(L, 1);
    return 0;
}

static int parse_tls(lua_State *L, int idx, struct server_cfg *s, int line, char *err,
                     size_t errlen)
{
    (void)line;
    lua_getfield(L, idx, "tls");
    int rc = 0;
    if (lua_istable(L, -1)) {
        static const char *const keys[] = {"cert", "key", NULL};
        int t = lua_gettop(L);
        char why[256] = "";
        if (lf_check_keys(L, t, "server.tls", keys, err, errlen) < 0)
            rc = -1;
        else if (lf_string(L, t, "cert", true, &s->tls_cert, why, sizeof why) < 0 ||
                 lf_string(L, t, "key", true, &s->tls_key, why, sizeof why) < 0) {
            snprintf(err, errlen, "server.tls: %s", why);
            rc = -1;
        }
    } else if (!lua_isnil(L, -1)) {
        snprintf(err, errlen, "server: 'tls' must be a table { cert = ..., key = ... }");
        rc = -1;
    }
    lua_pop(L, 1);
    return rc;
}

static int parse_log_format(lua_State *L, int idx, struct server_cfg *s, int line, char *err,
                            size_t errlen)
{
    (void)line;
    char *log_format = NULL;
    if (lf_string(L, idx, "log_format", false, &log_format, err, errlen) < 0)
        return -1;
    int rc = 0;
    if (log_format && strcmp(log_format, "json") == 0)
        s->log_json = true;
    else if (log_format && strcmp(log_format, "plain") != 0) {
        snprintf(err, errlen, "server: log_format must be \"plain\" or \"json\", got \"%s\"",
                 log_format);
        rc = -1;
    }
    free(log_format);
    return rc;
}

static int parse_log_level(lua_State *L, int idx, struct server_cfg *s, int line, char *err,
                           size_t errlen)
{
    (void)line;
    /* The order of enum log_level: each level also writes the ones above it. */
    static const char *const names[] = {"error", "warning", "info", "debug"};
    char *level = NULL;
    if (lf_string(L, idx, "log_level", false, &level, err, errlen) < 0)
        return -1;
    int rc = 0;
    if (level) {
        rc = -1;
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
            if (strcmp(level, names[i]) == 0) {
                s->log_level = (int)i;
                rc = 0;
            }
        if (rc < 0)
            snprintf(err, errlen,
                     "server: log_level must be \"error\", \"warning\", \"info\" or \"debug\", "
                     "got \"%s\"",
                     level);
    }
    free(level);
    return rc;
}

static int parse_undelivered(lua_State *L, int idx, struct server_cfg *s, int line, char *err,
                             size_t errlen)
{
    (void)line;
    char *text = NULL;
    if (lf_string(L, idx, "undelivered", false, &text, err, errlen) < 0)
        return -1;
    int rc = 0;
    if (text && undelivered_policy_parse(text, &s->undelivered) < 0) {
        snprintf(err, errlen,
                 "server: undelivered must be \"reject\", \"tempfail\" or \"accept\", got \"%s\"",
                 text);
        rc = -1;
    }
    free(text);
    return rc;
}

static int parse_xclient(lua_State *L, int idx, struct server_cfg *s, int line, char *err,
                         size_t errlen)
{
    (void)line;
    return lf_cidr_list(L, idx, "xclient", "server", &s->xclient, &s->nxclient, err, errlen);
}

static int parse_bare_newline(lua_State *L, int idx, struct server_cfg *s, int line, char *err,
                              size_t errlen)
{
    (void)line;
    char *mode = NULL;
    if (lf_string(L, idx, "bare_newline", false, &mode, err, errlen) < 0)
        return -1;
    int rc = 0;
    if (mode && strcmp(mode, "normalize") == 0)
        s->bare_lf_normalize = true;
    else if (mode && strcmp(mode, "reject") != 0) {
        snprintf(err, errlen,
                 "server: bare_newline must be \"reject\" or \"normalize\", got \"%s\"", mode);
        rc = -1;
    }
    free(mode);
    return rc;
}

static int parse_bare_newline_exclusions(lua_State *L, int idx, struct server_cfg *s, int line,
                                         char *err, size_t errlen)
{
    (void)line;
    return lf_cidr_list(L, idx, "bare_newline_exclusions", "server", &s->bare_newline_exclusions,
                        &s->nbare_newline_exclusions, err, errlen);
}

/* --- checks and computed defaults ---------------------------------------------------------- */

static int check_domains(struct server_cfg *s, bool given, char *err, size_t errlen)
{
    (void)given;
    if (s->ndomains == 0) {
        snprintf(err, errlen, "server: 'domains' must list at least one accepted domain");
        return -1;
    }
    for (size_t i = 0; i < s->ndomains; i++) {
        const char *d = s->domains[i][0] == '.' ? s->domains[i] + 1 : s->domains[i];
        if (!domain_valid_utf8(d)) {
            snprintf(err, errlen, "server: '%s' in domains is not a valid domain", s->domains[i]);
            return -1;
        }
        ascii_lower(s->domains[i]);
    }
    return 0;
}

/* 550 (Postfix's smtpd_forbid_bare_newline_reject_code default) or 521 (RFC 7504: this
 * server will not talk to you), nothing in between. */
static int check_bare_newline_code(struct server_cfg *s, bool given, char *err, size_t errlen)
{
    (void)given;
    if (s->bare_newline_reject_code != 550 && s->bare_newline_reject_code != 521) {
        snprintf(err, errlen, "server: bare_newline_reject_code must be 550 or 521, got %lld",
                 s->bare_newline_reject_code);
        return -1;
    }
    return 0;
}

/* Only a given name is judged: the default is whatever the host calls itself. */
static int check_hostname(struct server_cfg *s, bool given, char *err, size_t errlen)
{
    if (given && !domain_valid(s->hostname)) {
        snprintf(err, errlen, "server: hostname '%s' is not a valid host name", s->hostname);
        return -1;
    }
    return 0;
}

static int check_metrics(struct server_cfg *s, bool given, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    if (given && s->metrics && sockaddr_parse(s->metrics, &ss, &sl) < 0) {
        snprintf(err, errlen, "server: metrics address '%s' must be numeric \"ip:port\"",
                 s->metrics);
        return -1;
    }
    return 0;
}

static void default_hostname(struct server_cfg *s)
{
    char h[256] = "localhost";
    gethostname(h, sizeof h - 1);
    s->hostname = xstrdup(h);
}

/* A worker spends most of a message waiting for its fsyncs: four per core keep the disk busy
 * while the others compute (measured: +11% without checks, +14% with, over two per core at
 * concurrency 50; eight per core was no better and sixteen worse). */
static void default_log_level(struct server_cfg *s)
{
    s->log_level = LOG_INFO;
}

static void default_undelivered(struct server_cfg *s)
{
    s->undelivered = UNDELIVERED_REJECT;
}

static void default_workers(struct server_cfg *s)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    s->workers = n > 0 ? (4 * n > 256 ? 256 : 4 * n) : 8;
}

/* --- the table ------------------------------------------------------------------------------ */

/* The field's offset, and a compile error when its type is not T. */
#define FIELD(T, f)                                                                                \
    (offsetof(struct server_cfg, f) + 0 * sizeof((T *){&((struct server_cfg *)0)->f}))
#define INTEGER(f, d, lo, hi, ...)                                                                 \
    {                                                                                              \
        .name = #f, .type = SP_INTEGER, .off = FIELD(long long, f), .def = (d), .min = (lo),       \
        .max = (hi), __VA_ARGS__                                                                   \
    }
#define BOOL(f, d)                                                                                 \
    {                                                                                              \
        .name = #f, .type = SP_BOOL, .off = FIELD(bool, f), .def = (d)                             \
    }
#define STRING(f, ...)                                                                             \
    {                                                                                              \
        .name = #f, .type = SP_STRING, .off = FIELD(char *, f), __VA_ARGS__                        \
    }
#define STRINGS(f, n, ...)                                                                         \
    {                                                                                              \
        .name = #f, .type = SP_STRINGS, .off = FIELD(char **, f), .count_off = FIELD(size_t, n),   \
        __VA_ARGS__                                                                                \
    }
#define CUSTOM(key, fn)                                                                            \
    {                                                                                              \
        .name = key, .type = SP_CUSTOM, .parse = (fn)                                              \
    }

const struct server_param server_params[] = {
    CUSTOM("listen", parse_listen),
    STRING(hostname, .def_fn = default_hostname, .check = check_hostname),
    STRINGS(domains, ndomains, .check = check_domains),
    STRING(data_dir, .def_str = "var"),
    INTEGER(max_message_size, 25LL << 20, 1024, 1LL << 40),
    CUSTOM("tls", parse_tls),
    CUSTOM("log_format", parse_log_format),
    {.name = "log_level", .type = SP_CUSTOM, .parse = parse_log_level, .def_fn = default_log_level},
    INTEGER(max_recipients, 100, 1, 100000),
    INTEGER(max_connections, 10000, 1, 1000000),
    INTEGER(max_connections_per_ip, 50, 1, 1000000),
    INTEGER(command_timeout, 300, 1, 86400),
    INTEGER(data_timeout, 600, 1, 86400),
    INTEGER(max_errors, 20, 1, 100000),
    INTEGER(workers, 0, 1, 256, .def_fn = default_workers),
    STRING(rule_set),
    BOOL(auth_checks, true),
    CUSTOM("xclient", parse_xclient),
    CUSTOM("bare_newline", parse_bare_newline),
    CUSTOM("bare_newline_exclusions", parse_bare_newline_exclusions),
    INTEGER(bare_newline_reject_code, 550, 521, 550, .check = check_bare_newline_code),
    STRING(metrics, .check = check_metrics),
    INTEGER(retry_initial_ms, 60 * 1000, 10, 86400000),
    INTEGER(retry_max_ms, 30 * 60 * 1000, 10, 86400000),
    STRING(bounce_relay),
    /* The kernel caps it at net.core.somaxconn; a burst of new connections beyond the queue
     * waits for the clients' SYN retransmission (1 s, then 3 s). */
    INTEGER(listen_backlog, SOMAXCONN, 1, 65535),
    {.name = "undelivered",
     .type = SP_CUSTOM,
     .parse = parse_undelivered,
     .def_fn = default_undelivered},
};
const size_t server_nparams = sizeof server_params / sizeof server_params[0];

/* --- the loop ------------------------------------------------------------------------------- */

void server_params_defaults(struct server_cfg *s)
{
    char *base = (char *)s;
    for (size_t i = 0; i < server_nparams; i++) {
        const struct server_param *p = &server_params[i];
        if (p->type == SP_INTEGER)
            *(long long *)(base + p->off) = p->def;
        else if (p->type == SP_BOOL)
            *(bool *)(base + p->off) = p->def != 0;
        else if (p->type == SP_STRING && p->def_str)
            *(char **)(base + p->off) = xstrdup(p->def_str);
        if (p->def_fn)
            p->def_fn(s);
    }
}

static int read_param(lua_State *L, int idx, const struct server_param *p, struct server_cfg *s,
                      int line, char *err, size_t errlen)
{
    char *base = (char *)s;
    switch (p->type) {
    case SP_INTEGER:
        return lf_integer(L, idx, p->name, p->min, p->max, (long long *)(base + p->off), err,
                          errlen);
    case SP_BOOL:
        return lf_bool(L, idx, p->name, (bool *)(base + p->off), err, errlen);
    case SP_STRING:
        return lf_string(L, idx, p->name, false, (char **)(base + p->off), err, errlen);
    case SP_STRINGS:
        return lf_string_list(L, idx, p->name, (char ***)(base + p->off),
                              (size_t *)(base + p->count_off), err, errlen);
    case SP_CUSTOM:
        return p->parse(L, idx, s, line, err, errlen);
    }
    return -1;
}

int server_params_parse(lua_State *L, int idx, struct server_cfg *s, int line, char *err,
                        size_t errlen)
{
    idx = lua_absindex(L, idx);
    const char *keys[sizeof server_params / sizeof server_params[0] + 1];
    for (size_t i = 0; i < server_nparams; i++)
        keys[i] = server_params[i].name;
    keys[server_nparams] = NULL;
    if (lf_check_keys(L, idx, "server", keys, err, errlen) < 0)
        return -1;
    /* Every key is read before any is checked, so the first error is the first key of the
     * wrong type, as with the chain of reads this table replaced. */
    for (size_t i = 0; i < server_nparams; i++)
        if (read_param(L, idx, &server_params[i], s, line, err, errlen) < 0)
            return -1;
    for (size_t i = 0; i < server_nparams; i++) {
        const struct server_param *p = &server_params[i];
        if (!p->check)
            continue;
        lua_getfield(L, idx, p->name);
        bool given = !lua_isnil(L, -1);
        lua_pop(L, 1);
        if (p->check(s, given, err, errlen) < 0)
            return -1;
    }
    return 0;
}
