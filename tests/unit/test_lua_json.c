/* lua/lua_json: Lua values to JSON and back, as the config keeps a post-acceptance action's
 * table for its spooled jobs and a rebuild pushes it again. Round trips keep every value and
 * its kind (integer or float); each value JSON cannot hold is refused with its reason. */
#include "lua/lua_json.h"
#include "check.h"

#include <jansson.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdlib.h>

/* Evaluates expr in L and converts the result; returns the canonical JSON text (caller frees)
 * or NULL with the reason in err. */
static char *encode(lua_State *L, const char *expr, char *err, size_t errlen)
{
    char code[4096];
    snprintf(code, sizeof code, "return %s", expr);
    err[0] = '\0';
    if (luaL_dostring(L, code) != LUA_OK) {
        snprintf(err, errlen, "lua: %s", lua_tostring(L, -1));
        lua_settop(L, 0);
        return NULL;
    }
    json_t *j = lua_json_from(L, -1, err, errlen);
    lua_settop(L, 0);
    if (!j)
        return NULL;
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    json_decref(j);
    return s;
}

/* text -> Lua -> JSON text again. */
static char *round_trip(lua_State *L, const char *text, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *j = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (!j) {
        snprintf(err, errlen, "bad test JSON: %s", jerr.text);
        return NULL;
    }
    int rc = lua_json_push(L, j, err, errlen);
    json_decref(j);
    if (rc < 0)
        return NULL;
    json_t *back = lua_json_from(L, -1, err, errlen);
    lua_settop(L, 0);
    if (!back)
        return NULL;
    char *s = json_dumps(back, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    json_decref(back);
    return s;
}

static void check_encodes(lua_State *L, const char *expr, const char *want)
{
    char err[200];
    char *got = encode(L, expr, err, sizeof err);
    CHECK_STR(got ? got : err, want);
    free(got);
}

/* Refused with a reason that starts with why. */
static void check_refused(lua_State *L, const char *expr, const char *why)
{
    char err[200];
    char *got = encode(L, expr, err, sizeof err);
    CHECK(got == NULL);
    CHECK_PREFIX(err, why);
    free(got);
}

int main(void)
{
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);

    check_encodes(L, "{ url = 'http://x', timeout_ms = 5000, ratio = 0.5, on = true }",
                  "{\"on\":true,\"ratio\":0.5,\"timeout_ms\":5000,\"url\":\"http://x\"}");
    check_encodes(L, "{ list = { 'a', 'b', { deep = { 1, 2.0 } } }, empty = {} }",
                  "{\"empty\":{},\"list\":[\"a\",\"b\",{\"deep\":[1,2.0]}]}");
    check_encodes(L, "'caf\\xc3\\xa9'", "\"caf\xc3\xa9\"");

    check_refused(L, "{ f = print }", "cannot encode a function");
    check_refused(L, "{ co = coroutine.create(print) }", "cannot encode a thread");
    check_refused(L, "{ x = 0/0 }", "cannot encode "); /* "nan" or "-nan" */
    check_refused(L, "{ x = math.huge }", "cannot encode inf");
    check_refused(L, "{ secret = '\\xff' }", "string is not valid UTF-8");
    check_refused(L, "{ ['\\xff'] = 1 }", "key is not valid UTF-8");
    check_refused(L, "{ 1, 2, x = 3 }", "table mixes keys (want a list 1..n or string keys)");
    check_refused(L, "{ [1] = 'a', [3] = 'c' }",
                  "table mixes keys (want a list 1..n or string keys)");
    check_refused(L, "{ [true] = 1 }", "table mixes keys (want a list 1..n or string keys)");
    check_refused(L, "(function() local t = {} for i = 1, 70 do t = { t } end return t end)()",
                  "nesting deeper than 64");

    char err[200];
    const char *trips[] = {"{\"a\":[1,2.5,\"x\",true,false],\"b\":{\"c\":{}}}", "\"s\"", "7",
                           "-1.5", "{\"n\":\"a\\u0000b\"}"};
    for (size_t i = 0; i < sizeof trips / sizeof trips[0]; i++) {
        char *got = round_trip(L, trips[i], err, sizeof err);
        CHECK_STR(got ? got : err, trips[i]);
        free(got);
    }
    /* Deeper than a config table may be: refused with nothing left pushed. */
    char deep[400] = "";
    for (int i = 0; i < 70; i++)
        strcat(deep, "[");
    for (int i = 0; i < 70; i++)
        strcat(deep, "]");
    char *got = round_trip(L, deep, err, sizeof err);
    CHECK(got == NULL);
    CHECK_STR(err, "nesting deeper than 64");
    CHECK_INT(lua_gettop(L), 0);
    free(got);

    lua_close(L);
    return CHECK_DONE();
}
