/* The script standard library. Every C resource held across a call that may raise (Lua
 * allocation failures included) is owned by the sandbox, so a memory kill leaks nothing. */
#include "lua/stdlib.h"
#include "core/buf.h"
#include "core/log.h"
#include "lua/lua_json.h"
#include "lua/sandbox.h"
#include "lua/script_dns.h"
#include "lua/script_metrics.h"

#include <jansson.h>
#include <lauxlib.h>
#include <lua.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define LOG_MAX 1024
/* Lines one invocation may log: a loop cannot flood the log within its time budget. */
#define LOG_LINES_MAX 100

/* --- sluice.log ------------------------------------------------------------------------------ */

static int l_log(lua_State *L)
{
    const struct script_origin *o = lua_touserdata(L, lua_upvalueindex(1));
    static const char *const levels[] = {"error", "warn", "info", "debug", NULL};
    static const enum log_level map[] = {LOG_ERR, LOG_WARN, LOG_INFO, LOG_DEBUG};
    int lvl = luaL_checkoption(L, 1, NULL, levels);
    struct sandbox *sb = sandbox_of(L);
    if (sb->log_lines >= LOG_LINES_MAX) {
        if (sb->log_lines++ == LOG_LINES_MAX) {
            struct log_kv kv[] = {{"script", o->script}, {"qid", o->qid}};
            log_event(LOG_WARN, "script_log_limit", kv, 2);
        }
        return 0;
    }
    sb->log_lines++;
    int n = lua_gettop(L); /* before luaL_buffinit, which pushes a placeholder */
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 2; i <= n; i++) {
        if (i > 2)
            luaL_addchar(&b, ' ');
        luaL_tolstring(L, i, NULL); /* pushes; may run __tostring */
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    size_t len;
    const char *text = lua_tolstring(L, -1, &len);
    char msg[LOG_MAX + 4];
    size_t k = 0;
    for (size_t i = 0; i < len && k < LOG_MAX; i++) /* one line, no control characters */
        msg[k++] = ((unsigned char)text[i] < 0x20 || text[i] == 0x7f) ? ' ' : text[i];
    if (len > LOG_MAX)
        memcpy(msg + k, "...", 3), k += 3;
    msg[k] = '\0';
    struct log_kv kv[] = {{"script", o->script}, {"qid", o->qid}, {"msg", msg}};
    log_event(map[lvl], "script_log", kv, 3);
    return 0;
}

/* --- sluice.metric ---------------------------------------------------------------------------- */

static int l_metric(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    lua_Integer v = luaL_optinteger(L, 2, 1);
    if (v < 0)
        return luaL_argerror(L, 2, "a counter only goes up");
    if (script_metric_add(name, (unsigned long long)v) < 0)
        return luaL_error(L,
                          "sluice.metric: invalid name '%s' (want [A-Za-z_][A-Za-z0-9_]{0,63}) "
                          "or too many distinct names",
                          name);
    return 0;
}

/* --- sluice.json -------------------------------------------------------------------------------
 */

static void json_free(void *p)
{
    json_decref(p);
}

static int l_json_encode(lua_State *L)
{
    luaL_checkany(L, 1);
    struct sandbox *sb = sandbox_of(L);
    char why[160];
    json_t *j = lua_json_from(L, 1, why, sizeof why);
    if (!j)
        return luaL_error(L, "sluice.json.encode: %s", why);
    sandbox_own(sb, j, json_free);
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
    sandbox_release(sb, j);
    if (!s)
        return luaL_error(L, "sluice.json.encode: cannot encode");
    sandbox_own(sb, s, free);
    lua_pushstring(L, s);
    sandbox_release(sb, s);
    return 1;
}

/* Returns the value, or nil and the parser's message. */
static int l_json_decode(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    json_error_t e;
    json_t *j = json_loadb(s, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &e);
    if (!j) {
        lua_pushnil(L);
        lua_pushfstring(L, "line %d column %d: %s", e.line, e.column, e.text);
        return 2;
    }
    struct sandbox *sb = sandbox_of(L);
    sandbox_own(sb, j, json_free);
    char why[160];
    if (lua_json_push(L, j, why, sizeof why) < 0)
        return luaL_error(L, "sluice.json.decode: %s", why);
    sandbox_release(sb, j);
    return 1;
}

/* --- sluice.dns --------------------------------------------------------------------------------
 */

static void free_list(char **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

struct dns_answer {
    char **list;
    size_t n;
};

static void answer_free(void *p)
{
    struct dns_answer *a = p;
    free_list(a->list, a->n);
    free(a);
}

/* Returns a list (TXT: strings; MX: {preference=, exchange=} sorted as received), an empty list
 * when nothing exists, or nil and an error message. */
static int dns_lookup(lua_State *L, enum script_dns_type type)
{
    const char *name = luaL_checkstring(L, 1);
    script_dns_lookup_fn fn = script_dns_get();
    if (!fn) {
        lua_pushnil(L);
        lua_pushliteral(L, "DNS not available");
        return 2;
    }
    struct sandbox *sb = sandbox_of(L);
    struct dns_answer *a = calloc(1, sizeof *a);
    if (!a)
        return luaL_error(L, "out of memory");
    sandbox_own(sb, a, answer_free);
    char err[256] = "";
    int rc = fn(name, type, sandbox_remaining_ms(sb), &a->list, &a->n, err, sizeof err);
    if (rc < 0) {
        sandbox_release(sb, a);
        lua_pushnil(L);
        lua_pushstring(L, err[0] ? err : "DNS lookup failed");
        return 2;
    }
    lua_createtable(L, rc == 0 ? (int)a->n : 0, 0);
    for (size_t i = 0; rc == 0 && i < a->n; i++) {
        if (type == SCRIPT_DNS_MX) {
            char *sp = strchr(a->list[i], ' ');
            lua_createtable(L, 0, 2);
            lua_pushinteger(L, strtol(a->list[i], NULL, 10));
            lua_setfield(L, -2, "preference");
            lua_pushstring(L, sp ? sp + 1 : a->list[i]);
            lua_setfield(L, -2, "exchange");
        } else {
            lua_pushstring(L, a->list[i]);
        }
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    sandbox_release(sb, a);
    return 1;
}

static int l_dns_txt(lua_State *L)
{
    return dns_lookup(L, SCRIPT_DNS_TXT);
}

static int l_dns_mx(lua_State *L)
{
    return dns_lookup(L, SCRIPT_DNS_MX);
}

void script_stdlib_open(lua_State *L, const struct script_origin *origin)
{
    lua_createtable(L, 0, 4);
    lua_pushlightuserdata(L, (void *)origin);
    lua_pushcclosure(L, l_log, 1);
    lua_setfield(L, -2, "log");
    lua_pushcfunction(L, l_metric);
    lua_setfield(L, -2, "metric");
    lua_createtable(L, 0, 2);
    lua_pushcfunction(L, l_json_encode);
    lua_setfield(L, -2, "encode");
    lua_pushcfunction(L, l_json_decode);
    lua_setfield(L, -2, "decode");
    lua_setfield(L, -2, "json");
    lua_createtable(L, 0, 2);
    lua_pushcfunction(L, l_dns_txt);
    lua_setfield(L, -2, "txt");
    lua_pushcfunction(L, l_dns_mx);
    lua_setfield(L, -2, "mx");
    lua_setfield(L, -2, "dns");
    lua_setglobal(L, "sluice");
}
