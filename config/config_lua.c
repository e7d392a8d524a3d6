/* The config DSL. The file is ordinary Lua 5.4 run once in a fresh, restricted state; the
 * globals server{}, rule_set "n" {}, rule{} and one constructor per action type build C
 * structs as they are called, so every error knows the file and line of the call that caused
 * it. Nothing of the Lua state survives the load. */
#include "actions/action.h"
#include "actions/action_dsl.h"
#include "config/config.h"
#include "config/config_dsl.h"
#include "config/config_dmarc.h"
#include "config/config_dns.h"
#include "config/config_scan.h"
#include "config/config_text.h"
#include "config/config_dmarc_reports.h"
#include "lua/lua_fields.h"
#include "lua/lua_json.h"
#include "config/server_params.h"
#include "core/buf.h"
#include "core/xalloc.h"
#include "rules/metrics.h"
#include "rules/rcpt_index.h"
#include "rules/ruleset.h"

#include <jansson.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LOADER_KEY "sluice.loader"
#define ACTION_MT "sluice.action"
#define RULE_MT "sluice.rule"
/* A config is a few hundred lines; these bound a runaway or hostile one. */
#define CONFIG_MAX_INSTRUCTIONS 200000000
#define CONFIG_MAX_MEMORY (512u << 20)

struct loader {
    struct config *cfg;
    const char *path;
    char *abs_path; /* path made absolute (not resolved): what post-acceptance actions keep */
    bool server_seen;
    size_t mem;
};

static struct loader *get_loader(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, LOADER_KEY);
    struct loader *ld = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return ld;
}

/* The line of the config code that called the current C function. */
static int call_line(lua_State *L)
{
    lua_Debug ar;
    if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "l", &ar) && ar.currentline > 0)
        return ar.currentline;
    return 0;
}

/* Raises "FILE:LINE: msg" (not luaL_error, which would prefix the caller's position too). */
static int raise_at(lua_State *L, int line, const char *msg)
{
    lua_pushfstring(L, "%s:%d: %s", get_loader(L)->path, line, msg);
    return lua_error(L);
}

/* Raises "FILE:LINE: BLOCK: msg". The shared field readers (lua/lua_fields.c) know the field
 * but not the block it is in, so the block is named here, unless msg already starts with it. */
static int raise_in(lua_State *L, int line, const char *block, const char *msg)
{
    size_t n = strlen(block);
    if (strncmp(msg, block, n) == 0 && strchr(":. '{", msg[n]) && msg[n])
        return raise_at(L, line, msg);
    lua_pushfstring(L, "%s:%d: %s: %s", get_loader(L)->path, line, block, msg);
    return lua_error(L);
}

static bool valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return false;
    return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") == n;
}

/* --- actions ----------------------------------------------------------------------------- */

static int action_gc(lua_State *L)
{
    struct action **box = luaL_checkudata(L, 1, ACTION_MT);
    action_free(*box);
    *box = NULL;
    return 0;
}

static int keep_params(lua_State *L, struct action *a, char *err, size_t errlen);

static int action_ctor(lua_State *L)
{
    const struct action_type *type = lua_touserdata(L, lua_upvalueindex(1));
    int line = call_line(L);
    char err[512];
    if (lua_gettop(L) != 1 || !lua_istable(L, 1)) {
        snprintf(err, sizeof err, "%s expects a table: %s { ... }", type->name, type->name);
        return raise_in(L, line, type->name, err);
    }
    struct action **box = lua_newuserdatauv(L, sizeof *box, 0);
    *box = NULL;
    luaL_setmetatable(L, ACTION_MT);
    struct action *a = xcalloc(1, sizeof *a);
    a->type = type;
    a->line = line;
    a->stats = metrics_action_stats(type->name);
    *box = a;
    err[0] = '\0';
    if (action_policy_parse(L, 1, a, err, sizeof err) < 0 ||
        type->parse(L, 1, &a->state, err, sizeof err) < 0)
        return raise_in(L, line, type->name, err);
    if (type->variant)
        a->type = type->variant(a->state);
    if (action_policy_check(a, err, sizeof err) < 0 || keep_params(L, a, err, sizeof err) < 0)
        return raise_in(L, line, type->name, err);
    return 1;
}

/* A post-acceptance action keeps its (already parsed) config table as JSON, so that every job
 * spooled for it can rebuild it later: see config_action_build. */
static int keep_params(lua_State *L, struct action *a, char *err, size_t errlen)
{
    if (!a->type->deliver)
        return 0;
    char why[160];
    json_t *params = lua_json_from(L, 1, why, sizeof why);
    if (!params) {
        snprintf(err, errlen, "%s: its parameters must be plain values to be kept in the spool: %s",
                 a->type->name, why);
        return -1;
    }
    a->params = json_dumps(params, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(params);
    a->config_file = xstrdup(get_loader(L)->abs_path);
    if (!a->params) {
        snprintf(err, errlen, "%s: cannot encode its parameters", a->type->name);
        return -1;
    }
    return 0;
}

/* --- rules ------------------------------------------------------------------------------- */

static int rule_gc(lua_State *L)
{
    struct rule **box = luaL_checkudata(L, 1, RULE_MT);
    rule_free(*box);
    *box = NULL;
    return 0;
}

const char *config_dsl_path(lua_State *L)
{
    struct loader *ld = get_loader(L);
    return ld ? ld->path : NULL;
}

struct config *config_dsl_config(lua_State *L)
{
    return get_loader(L)->cfg;
}

int config_dsl_raise(lua_State *L, int line, const char *block, const char *msg)
{
    return raise_in(L, line, block, msg);
}

int config_dsl_block(lua_State *L, const char *name, const char *usage, int *seen)
{
    int line = call_line(L);
    char err[512];
    if (lua_gettop(L) != 1 || !lua_istable(L, 1)) {
        snprintf(err, sizeof err, "%s expects a table: %s", name, usage);
        return raise_at(L, line, err);
    }
    if (*seen) {
        snprintf(err, sizeof err, "%s { } is given twice (first at line %d)", name, *seen);
        return raise_at(L, line, err);
    }
    *seen = line;
    return line;
}

/* A rule's actions, or (nested) a list inside an action, which runs in the session. */
static int take_actions(lua_State *L, int idx, const char *key, bool nested, struct action ***out,
                        size_t *n, char *err, size_t errlen)
{
    *out = NULL;
    *n = 0;
    lua_getfield(L, idx, key);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return 0;
    }
    if (!lua_istable(L, -1)) {
        snprintf(err, errlen, "field '%s' must be a list of actions, got %s", key,
                 luaL_typename(L, -1));
        lua_pop(L, 1);
        return -1;
    }
    size_t len = (size_t)lua_rawlen(L, -1);
    /* Validate every item before taking any, so nothing is owned twice on error. */
    for (size_t i = 0; i < len; i++) {
        lua_rawgeti(L, -1, (lua_Integer)i + 1);
        struct action **box = luaL_testudata(L, -1, ACTION_MT);
        int ok = box && *box;
        if (!ok) {
            struct buf known = {0};
            for (size_t k = 0; action_types[k]; k++)
                buf_printf(&known, "%s%s", k ? ", " : "", action_types[k]->name);
            snprintf(err, errlen, "%s item %zu is not an action (got %s; actions: %s)", key, i + 1,
                     luaL_typename(L, -1), buf_cstr(&known));
            buf_free(&known);
        }
        /* A nested list runs inside its action, in the session: there is no spooling there,
         * so an action that runs from the spool after the 250 has no place in it. */
        if (ok && nested && (*box)->type->deliver) {
            snprintf(err, errlen,
                     "%s item %zu: %s runs after acceptance, from the spool, and cannot be in "
                     "a nested list; give it a rule of its own with the same conditions",
                     key, i + 1, (*box)->type->name);
            ok = 0;
        }
        lua_pop(L, 1);
        if (!ok) {
            lua_pop(L, 1);
            return -1;
        }
    }
    *out = xcalloc(len ? len : 1, sizeof **out);
    for (size_t i = 0; i < len; i++) {
        lua_rawgeti(L, -1, (lua_Integer)i + 1);
        struct action **box = lua_touserdata(L, -1);
        (*out)[(*n)++] = *box;
        *box = NULL;
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return 0;
}

int config_take_actions(lua_State *L, int idx, const char *key, struct action ***out, size_t *n,
                        char *err, size_t errlen)
{
    return take_actions(L, idx, key, true, out, n, err, errlen);
}

static int parse_rule_actions(lua_State *L, struct rule *r, char *err, size_t errlen)
{
    char e[400];
    if (take_actions(L, 1, "actions", false, &r->actions, &r->nactions, e, sizeof e) < 0) {
        snprintf(err, errlen, "rule '%s': %s", r->name, e);
        return -1;
    }
    return 0;
}

static int parse_rule_conditions(lua_State *L, struct rule *r, const char *key,
                                 struct cond_list *out, char *err, size_t errlen)
{
    lua_getfield(L, 1, key);
    int rc = 0;
    if (!lua_isnil(L, -1)) {
        char e[400];
        rc = cond_list_parse(L, -1, key, out, e, sizeof e);
        if (rc < 0)
            snprintf(err, errlen, "rule '%s': %s", r->name, e);
    }
    lua_pop(L, 1);
    return rc;
}

static int parse_rule(lua_State *L, struct rule *r, char *err, size_t errlen)
{
    static const char *const keys[] = {"name", "enabled", "recipients", "tls", "scan",
                                       "when", "unless",  "actions",    NULL};
    if (lf_check_keys(L, 1, "rule", keys, err, errlen) < 0 ||
        lf_string(L, 1, "name", true, &r->name, err, errlen) < 0)
        return -1;
    if (!valid_name(r->name)) {
        snprintf(err, errlen, "rule name '%s' must be 1-64 characters of A-Z a-z 0-9 _ . -",
                 r->name);
        return -1;
    }
    char *tls = NULL;
    char **rcpts = NULL;
    size_t nrcpts = 0;
    int rc = 0;
    if (lf_bool(L, 1, "enabled", &r->enabled, err, errlen) < 0 ||
        lf_bool(L, 1, "scan", &r->scan, err, errlen) < 0 ||
        lf_string(L, 1, "tls", false, &tls, err, errlen) < 0 ||
        lf_string_list(L, 1, "recipients", &rcpts, &nrcpts, err, errlen) < 0) {
        rc = -1;
    } else if (tls && strcmp(tls, "require") == 0) {
        r->tls = TLS_REQUIRE;
    } else if (tls && strcmp(tls, "optional") != 0) {
        snprintf(err, errlen, "rule '%s': tls must be \"optional\" or \"require\", got \"%s\"",
                 r->name, tls);
        rc = -1;
    }
    free(tls);
    if (rc == 0) {
        r->rcpts = xcalloc(nrcpts ? nrcpts : 1, sizeof *r->rcpts);
        for (size_t i = 0; i < nrcpts && rc == 0; i++) {
            char e[256];
            if (rcpt_cond_parse(rcpts[i], &r->rcpts[i], e, sizeof e) < 0) {
                snprintf(err, errlen, "rule '%s': %s", r->name, e);
                rc = -1;
            } else {
                r->nrcpts++;
            }
        }
    }
    lf_free_list(rcpts, nrcpts);
    if (rc == 0)
        rc = parse_rule_conditions(L, r, "when", &r->when, err, errlen);
    if (rc == 0)
        rc = parse_rule_conditions(L, r, "unless", &r->unless, err, errlen);
    if (rc == 0)
        rc = parse_rule_actions(L, r, err, errlen);
    return rc;
}

static int rule_ctor(lua_State *L)
{
    int line = call_line(L);
    if (lua_gettop(L) != 1 || !lua_istable(L, 1))
        return raise_at(L, line, "rule expects a table: rule { name = ..., actions = { ... } }");
    struct rule **box = lua_newuserdatauv(L, sizeof *box, 0);
    *box = NULL;
    luaL_setmetatable(L, RULE_MT);
    struct rule *r = xcalloc(1, sizeof *r);
    r->enabled = true;
    r->line = line;
    *box = r;
    char err[512] = "";
    if (parse_rule(L, r, err, sizeof err) < 0)
        return raise_in(L, line, "rule", err);
    return 1;
}

/* --- rule sets --------------------------------------------------------------------------- */

static int rule_set_body(lua_State *L)
{
    struct loader *ld = get_loader(L);
    const char *name = lua_tostring(L, lua_upvalueindex(1));
    int line = (int)lua_tointeger(L, lua_upvalueindex(2));
    char err[512];
    if (lua_gettop(L) != 1 || !lua_istable(L, 1)) {
        snprintf(err, sizeof err,
                 "rule_set \"%s\" expects a table of rules: rule_set \"%s\" { "
                 "rule { ... }, ... }",
                 name, name);
        return raise_at(L, line, err);
    }
    if (config_find_rule_set(ld->cfg, name)) {
        snprintf(err, sizeof err, "rule_set \"%s\" is defined twice", name);
        return raise_at(L, line, err);
    }
    struct config *cfg = ld->cfg;
    struct rule_set *rs = xcalloc(1, sizeof *rs);
    rs->name = xstrdup(name);
    rs->line = line;
    cfg->sets = xrealloc(cfg->sets, (cfg->nsets + 1) * sizeof *cfg->sets);
    cfg->sets[cfg->nsets++] = rs;

    size_t n = (size_t)lua_rawlen(L, 1);
    lua_pushnil(L);
    while (lua_next(L, 1)) {
        lua_pop(L, 1);
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 || (size_t)lua_tointeger(L, -1) > n) {
            snprintf(err, sizeof err,
                     "rule_set \"%s\": only rule { ... } entries are allowed "
                     "(found key %s)",
                     name, lua_tostring(L, -1) ? lua_tostring(L, -1) : "?");
            return raise_at(L, line, err);
        }
    }
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, 1, (lua_Integer)i + 1);
        struct rule **box = luaL_testudata(L, -1, RULE_MT);
        if (!box || !*box) {
            snprintf(err, sizeof err, "rule_set \"%s\": item %zu is not a rule { ... } (got %s)",
                     name, i + 1, luaL_typename(L, -1));
            return raise_at(L, line, err);
        }
        struct rule *r = *box;
        for (size_t j = 0; j < rs->nrules; j++) {
            if (strcmp(rs->rules[j]->name, r->name) == 0) {
                snprintf(err, sizeof err,
                         "duplicate rule name '%s' in rule_set \"%s\" (first at line %d)", r->name,
                         name, rs->rules[j]->line);
                return raise_at(L, r->line, err);
            }
        }
        rs->rules = xgrow(rs->rules, sizeof *rs->rules, &rs->rules_cap, rs->nrules);
        rs->rules[rs->nrules++] = r;
        *box = NULL;
        r->stats = metrics_rule_stats(name, r->name);
        lua_pop(L, 1);
    }
    rs->stats = metrics_rule_stats(name, NULL);
    rs->index = rcpt_index_build(rs->rules, rs->nrules);
    return 0;
}

static int rule_set_ctor(lua_State *L)
{
    int line = call_line(L);
    if (lua_gettop(L) != 1 || lua_type(L, 1) != LUA_TSTRING)
        return raise_at(L, line, "rule_set expects a name: rule_set \"main\" { ... }");
    const char *name = lua_tostring(L, 1);
    if (!valid_name(name)) {
        char err[256];
        snprintf(err, sizeof err, "rule_set name '%s' must be 1-64 characters of A-Z a-z 0-9 _ . -",
                 name);
        return raise_at(L, line, err);
    }
    lua_pushvalue(L, 1);
    lua_pushinteger(L, line);
    lua_pushcclosure(L, rule_set_body, 2);
    return 1;
}

/* --- receipt filters ---------------------------------------------------------------------- */

static int parse_filter(lua_State *L, struct receipt_filter *f, char *err, size_t errlen)
{
    static const char *const keys[] = {"name", "policy", "cidr", NULL};
    char *policy = NULL;
    int rc = 0;
    if (lf_check_keys(L, 1, "receipt_filter", keys, err, errlen) < 0 ||
        lf_string(L, 1, "name", true, &f->name, err, errlen) < 0 ||
        lf_string(L, 1, "policy", true, &policy, err, errlen) < 0 ||
        lf_cidr_list(L, 1, "cidr", "receipt_filter", &f->nets, &f->nnets, err, errlen) < 0) {
        rc = -1;
    } else if (strcmp(policy, "allow") != 0 && strcmp(policy, "block") != 0) {
        snprintf(err, errlen, "receipt_filter '%s': policy must be \"block\" or \"allow\"",
                 f->name);
        rc = -1;
    } else if (f->nnets == 0) {
        snprintf(err, errlen, "receipt_filter '%s': cidr must list at least one network", f->name);
        rc = -1;
    }
    if (rc == 0)
        f->allow = strcmp(policy, "allow") == 0;
    free(policy);
    return rc;
}

static int receipt_filter_ctor(lua_State *L)
{
    struct loader *ld = get_loader(L);
    int line = call_line(L);
    if (lua_gettop(L) != 1 || !lua_istable(L, 1))
        return raise_at(L, line,
                        "receipt_filter expects a table: receipt_filter { name = ..., policy = "
                        "\"block\", cidr = { ... } }");
    struct config *c = ld->cfg;
    c->filters = xrealloc(c->filters, (c->nfilters + 1) * sizeof *c->filters);
    struct receipt_filter *f = &c->filters[c->nfilters++];
    memset(f, 0, sizeof *f);
    f->line = line;
    char err[512] = "";
    if (parse_filter(L, f, err, sizeof err) < 0)
        return raise_in(L, line, "receipt_filter", err);
    for (size_t i = 0; i + 1 < c->nfilters; i++) {
        if (strcmp(c->filters[i].name, f->name) == 0) {
            snprintf(err, sizeof err, "duplicate receipt_filter name '%s' (first at line %d)",
                     f->name, c->filters[i].line);
            return raise_at(L, line, err);
        }
    }
    return 0;
}

/* --- server ------------------------------------------------------------------------------ */

static int server_ctor(lua_State *L)
{
    struct loader *ld = get_loader(L);
    int line = call_line(L);
    if (lua_gettop(L) != 1 || !lua_istable(L, 1))
        return raise_at(L, line, "server expects a table: server { listen = ..., ... }");
    if (ld->server_seen)
        return raise_at(L, line, "server { } is given twice");
    ld->server_seen = true;
    ld->cfg->server.line = line;
    char err[512] = "";
    if (server_params_parse(L, 1, &ld->cfg->server, line, err, sizeof err) < 0)
        return raise_in(L, line, "server", err);
    return 0;
}

/* --- the state ---------------------------------------------------------------------------- */

static void *limited_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    struct loader *ld = ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        free(ptr);
        ld->mem -= old;
        return NULL;
    }
    if (nsize > old && ld->mem + (nsize - old) > CONFIG_MAX_MEMORY)
        return NULL;
    void *p = realloc(ptr, nsize);
    if (p)
        ld->mem = ld->mem - old + nsize;
    return p;
}

static void budget_hook(lua_State *L, lua_Debug *ar)
{
    lua_getinfo(L, "l", ar);
    lua_pushfstring(L, "%s:%d: config ran too long (more than %d instructions)",
                    get_loader(L)->path, ar->currentline, CONFIG_MAX_INSTRUCTIONS);
    lua_error(L);
}

static void open_libs(lua_State *L)
{
    static const luaL_Reg libs[] = {{LUA_GNAME, luaopen_base},
                                    {LUA_TABLIBNAME, luaopen_table},
                                    {LUA_STRLIBNAME, luaopen_string},
                                    {LUA_MATHLIBNAME, luaopen_math},
                                    {LUA_UTF8LIBNAME, luaopen_utf8},
                                    {LUA_OSLIBNAME, luaopen_os},
                                    {NULL, NULL}};
    for (const luaL_Reg *l = libs; l->func; l++) {
        luaL_requiref(L, l->name, l->func, 1);
        lua_pop(L, 1);
    }
    /* The config may read the environment (secrets) and the clock; nothing else of os, and no
     * way to run other files or bytecode. */
    lua_getglobal(L, "os");
    static const char *const os_drop[] = {"execute", "exit",      "remove", "rename",
                                          "tmpname", "setlocale", NULL};
    for (size_t i = 0; os_drop[i]; i++) {
        lua_pushnil(L);
        lua_setfield(L, -2, os_drop[i]);
    }
    lua_pop(L, 1);
    static const char *const base_drop[] = {"dofile", "loadfile", "load", NULL};
    for (size_t i = 0; base_drop[i]; i++) {
        lua_pushnil(L);
        lua_setglobal(L, base_drop[i]);
    }
}

#define BASE_GLOBALS_KEY "sluice.base_globals"

/* Remembers which globals Lua itself defines, so that the names the DSL adds can be listed
 * when a config calls one that does not exist. */
static void remember_base_globals(lua_State *L)
{
    lua_newtable(L);
    lua_pushglobaltable(L);
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        lua_pop(L, 1);
        lua_pushvalue(L, -1);
        lua_pushboolean(L, 1);
        lua_rawset(L, -5);
    }
    lua_pop(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, BASE_GLOBALS_KEY);
}

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return 64;
    size_t row[64];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

static bool is_action_name(const char *name)
{
    for (size_t i = 0; action_types[i]; i++)
        if (strcmp(action_types[i]->name, name) == 0)
            return true;
    return false;
}

/* Lua says "FILE:LINE: attempt to call a nil value (global 'add_headr')" for a misspelled
 * block or action. Rewrites that into what an operator can act on: the closest valid name and
 * the valid ones. Leaves err alone for any other message. */
static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Lua says "FILE:LINE: attempt to call a nil value (global 'add_headr')" for a misspelled
 * block or action. Rewrites that into what an operator can act on: the closest valid name and
 * the valid ones, in alphabetical order. Leaves err alone for any other message. */
static void explain_unknown_name(lua_State *L, const char *msg, char *err, size_t errlen)
{
    static const char marker[] = "attempt to call a nil value (global '";
    const char *m = strstr(msg, marker);
    if (!m)
        return;
    const char *start = m + sizeof marker - 1, *end = strchr(start, '\'');
    if (!end || end - start >= 64)
        return;
    char name[64];
    memcpy(name, start, (size_t)(end - start));
    name[end - start] = '\0';

    /* The names the DSL added to the globals (the strings stay alive in _G meanwhile). */
    const char *names[256];
    size_t n = 0;
    lua_getfield(L, LUA_REGISTRYINDEX, BASE_GLOBALS_KEY);
    lua_pushglobaltable(L);
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        bool fn = lua_isfunction(L, -1) && lua_type(L, -2) == LUA_TSTRING;
        lua_pop(L, 1);
        if (!fn || n == sizeof names / sizeof *names)
            continue;
        lua_pushvalue(L, -1);
        lua_rawget(L, -4);
        if (!lua_toboolean(L, -1))
            names[n++] = lua_tostring(L, -2);
        lua_pop(L, 1);
    }
    qsort(names, n, sizeof *names, cmp_names);
    struct buf blocks = {0}, actions = {0};
    char hint[96] = "";
    size_t best = 3; /* a suggestion at most two edits away, and less than half the name */
    for (size_t i = 0; i < n; i++) {
        struct buf *list = is_action_name(names[i]) ? &actions : &blocks;
        buf_printf(list, "%s%s", list->len ? ", " : "", names[i]);
        size_t d = edit_distance(name, names[i]);
        if (d < best && d * 2 < strlen(name)) {
            best = d;
            snprintf(hint, sizeof hint, " (did you mean '%s'?)", names[i]);
        }
    }
    snprintf(err, errlen, "%.*sunknown block or action '%s'%s; blocks: %s; actions: %s",
             (int)(m - msg), msg, name, hint, buf_cstr(&blocks), buf_cstr(&actions));
    lua_pop(L, 2);
    buf_free(&blocks);
    buf_free(&actions);
}

static void register_dsl(lua_State *L, struct loader *ld)
{
    remember_base_globals(L);
    lua_pushlightuserdata(L, ld);
    lua_setfield(L, LUA_REGISTRYINDEX, LOADER_KEY);
    luaL_newmetatable(L, ACTION_MT);
    lua_pushcfunction(L, action_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    luaL_newmetatable(L, RULE_MT);
    lua_pushcfunction(L, rule_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    lua_register(L, "server", server_ctor);
    lua_register(L, "rule_set", rule_set_ctor);
    lua_register(L, "rule", rule_ctor);
    lua_register(L, "receipt_filter", receipt_filter_ctor);
    config_dns_register(L, ld->cfg, ld->path);
    config_scan_register(L, ld->cfg, ld->path);
    config_dmarc_register(L, ld->cfg, ld->path);
    config_dmarc_reports_register(L, ld->cfg, ld->path);
    for (size_t i = 0; action_types[i]; i++) {
        lua_pushlightuserdata(L, (void *)action_types[i]);
        lua_pushcclosure(L, action_ctor, 1);
        lua_setglobal(L, action_types[i]->name);
    }
}

/* Checks that need the whole file: the server block exists, rule set references resolve. */
static int validate(struct loader *ld, char *err, size_t errlen)
{
    struct config *c = ld->cfg;
    struct server_cfg *s = &c->server;
    if (!ld->server_seen) {
        snprintf(err, errlen, "%s:1: no server { ... } block", ld->path);
        return -1;
    }
    if (c->nsets == 0) {
        snprintf(err, errlen, "%s:%d: no rule_set \"name\" { ... } is defined", ld->path, s->line);
        return -1;
    }
    if (s->rule_set && !config_find_rule_set(c, s->rule_set)) {
        snprintf(err, errlen, "%s:%d: server.rule_set names unknown rule set \"%s\"", ld->path,
                 s->line, s->rule_set);
        return -1;
    }
    for (size_t i = 0; i < s->nlisten; i++) {
        const char *rs = s->listen[i].rule_set;
        if (rs && !config_find_rule_set(c, rs)) {
            snprintf(err, errlen, "%s:%d: listen '%s' names unknown rule set \"%s\"", ld->path,
                     s->listen[i].line, s->listen[i].address, rs);
            return -1;
        }
        if (!rs && !s->rule_set && c->nsets > 1) {
            snprintf(err, errlen,
                     "%s:%d: listen '%s' names no rule set and there are %zu: set "
                     "server.rule_set or the listener's rule_set",
                     ld->path, s->listen[i].line, s->listen[i].address, c->nsets);
            return -1;
        }
    }
    return 0;
}

/* path as an absolute path (caller frees): the working directory prepended, symlinks kept, so
 * that a job spooled now finds the same files after a restart from another directory. */
static char *absolute(const char *path)
{
    char cwd[4096];
    if (path[0] == '/' || !getcwd(cwd, sizeof cwd))
        return xstrdup(path);
    return xasprintf("%s/%s", cwd, path);
}

struct config *config_load(const char *path, char *err, size_t errlen)
{
    static const struct action_dsl dsl = {.take_actions = config_take_actions,
                                          .path = config_dsl_path};
    action_dsl_register(&dsl);
    struct config *cfg = xcalloc(1, sizeof *cfg);
    cfg->refs = 1;
    cfg->path = xstrdup(path);
    server_params_defaults(&cfg->server);
    struct loader ld = {.cfg = cfg, .path = path, .abs_path = absolute(path)};

    lua_State *L = lua_newstate(limited_alloc, &ld);
    if (!L) {
        snprintf(err, errlen, "%s: cannot create a Lua state", path);
        free(ld.abs_path);
        config_release(cfg);
        return NULL;
    }
    open_libs(L);
    register_dsl(L, &ld);
    lua_sethook(L, budget_hook, LUA_MASKCOUNT, CONFIG_MAX_INSTRUCTIONS);

    /* Text only: precompiled bytecode can crash the VM. Chunk name is "@path", so Lua's own
     * messages read "path:line: ...". */
    struct buf text = {0};
    if (config_text_read(path, &text, cfg->sha256, err, errlen) < 0) {
        lua_close(L);
        buf_free(&text);
        free(ld.abs_path);
        config_release(cfg);
        return NULL;
    }
    /* Like luaL_loadfile: a UTF-8 byte order mark and a first line starting with '#' (a #!
     * line) are skipped, the line's newline kept so that line numbers stay right. */
    size_t skip = 0;
    if (text.len >= 3 && memcmp(text.data, "\xEF\xBB\xBF", 3) == 0)
        skip = 3;
    if (skip < text.len && text.data[skip] == '#')
        while (skip < text.len && text.data[skip] != '\n')
            skip++;
    char chunkname[1024];
    snprintf(chunkname, sizeof chunkname, "@%s", path);
    int rc =
        luaL_loadbufferx(L, text.data ? text.data + skip : "", text.len - skip, chunkname, "t");
    buf_free(&text);
    if (rc == LUA_OK)
        rc = lua_pcall(L, 0, 0, 0);
    if (rc != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        if (rc == LUA_ERRMEM)
            snprintf(err, errlen, "%s: config uses too much memory", path);
        else {
            snprintf(err, errlen, "%s", msg ? msg : "unknown error");
            if (msg)
                explain_unknown_name(L, msg, err, errlen);
        }
    }
    lua_close(L); /* runs __gc for every rule/action not moved into the config */
    free(ld.abs_path);
    if (rc == LUA_OK && validate(&ld, err, errlen) == 0)
        return cfg;
    config_release(cfg);
    return NULL;
}

/* --- actions rebuilt from a spooled job -------------------------------------------------- */

struct build {
    const struct action_type *type;
    const json_t *params;
    struct action *a;
    int ok;
    char err[512];
};

/* Runs protected: pushing the table and the parser may raise (memory). */
static int build_in_state(lua_State *L)
{
    struct build *b = lua_touserdata(L, 1);
    lua_settop(L, 0);
    char why[160];
    if (lua_json_push(L, b->params, why, sizeof why) < 0) {
        snprintf(b->err, sizeof b->err, "%s", why);
        return 0;
    }
    struct action *a = xcalloc(1, sizeof *a);
    a->type = b->type;
    a->stats = metrics_action_stats(b->type->name);
    b->a = a; /* freed by the caller on failure, also after a raise */
    if (b->type->parse(L, 1, &a->state, b->err, sizeof b->err) < 0)
        return 0;
    if (b->type->variant)
        a->type = b->type->variant(a->state);
    if (!a->type->deliver)
        snprintf(b->err, sizeof b->err, "%s with these parameters is not a post-acceptance action",
                 b->type->name);
    else
        b->ok = 1;
    return 0;
}

struct action *config_action_build(const char *type, const char *params, const char *config_file,
                                   char *err, size_t errlen)
{
    struct build b = {.type = action_type_find(type)};
    if (!b.type || (!b.type->deliver && !b.type->variant)) {
        snprintf(err, errlen, "\"%s\" is not a post-acceptance action type", type);
        return NULL;
    }
    json_error_t jerr;
    json_t *j = json_loads(params, JSON_ALLOW_NUL, &jerr);
    if (!json_is_object(j)) {
        snprintf(err, errlen, "%s: the parameters are not a JSON object", type);
        json_decref(j);
        return NULL;
    }
    b.params = j;
    struct loader ld = {.path = config_file};
    lua_State *L = lua_newstate(limited_alloc, &ld);
    if (!L) {
        json_decref(j);
        snprintf(err, errlen, "%s: cannot create a Lua state", type);
        return NULL;
    }
    lua_pushlightuserdata(L, &ld);
    lua_setfield(L, LUA_REGISTRYINDEX, LOADER_KEY);
    lua_pushcfunction(L, build_in_state);
    lua_pushlightuserdata(L, &b);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK)
        snprintf(b.err, sizeof b.err, "%s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "error");
    lua_close(L);
    json_decref(j);
    if (!b.ok) {
        snprintf(err, errlen, "%s", b.err[0] ? b.err : "the parameters were refused");
        action_free(b.a);
        return NULL;
    }
    b.a->params = xstrdup(params);
    b.a->config_file = xstrdup(config_file);
    return b.a;
}
