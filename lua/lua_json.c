/* Lua values <-> JSON (see lua_json.h). */
#include "lua/lua_json.h"

#include <jansson.h>
#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <stdio.h>

static json_t *from(lua_State *L, int idx, int depth, char *err, size_t errlen)
{
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        return json_null();
    case LUA_TBOOLEAN:
        return json_boolean(lua_toboolean(L, idx));
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx))
            return json_integer(lua_tointeger(L, idx));
        if (!isfinite(lua_tonumber(L, idx))) {
            snprintf(err, errlen, "cannot encode %f", lua_tonumber(L, idx));
            return NULL;
        }
        return json_real(lua_tonumber(L, idx));
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        json_t *j = json_stringn(s, len);
        if (!j)
            snprintf(err, errlen, "string is not valid UTF-8");
        return j;
    }
    case LUA_TTABLE:
        break;
    default:
        snprintf(err, errlen, "cannot encode a %s", luaL_typename(L, idx));
        return NULL;
    }
    if (depth > LUA_JSON_MAX_DEPTH) {
        snprintf(err, errlen, "nesting deeper than %d", LUA_JSON_MAX_DEPTH);
        return NULL;
    }
    if (!lua_checkstack(L, 4)) {
        snprintf(err, errlen, "nesting too deep for the Lua stack");
        return NULL;
    }
    idx = lua_absindex(L, idx);
    lua_Integer n = (lua_Integer)lua_rawlen(L, idx), keys = 0;
    int strings = 1;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        keys++;
        if (lua_type(L, -2) != LUA_TSTRING)
            strings = 0;
        lua_pop(L, 1);
    }
    json_t *j;
    if (keys > 0 && keys == n) {
        j = json_array();
        for (lua_Integer i = 1; j && i <= n; i++) {
            lua_rawgeti(L, idx, i);
            json_t *v = from(L, -1, depth + 1, err, errlen);
            lua_pop(L, 1);
            if (!v || json_array_append_new(j, v) < 0) {
                json_decref(j);
                j = NULL;
            }
        }
        return j;
    }
    if (!strings) {
        snprintf(err, errlen, "table mixes keys (want a list 1..n or string keys)");
        return NULL;
    }
    j = json_object();
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        json_t *v = from(L, -1, depth + 1, err, errlen);
        /* A key that is not UTF-8 is refused by jansson: the value goes with it. */
        if (!v || json_object_set_new(j, lua_tostring(L, -2), v) < 0) {
            if (v)
                snprintf(err, errlen, "key is not valid UTF-8");
            lua_pop(L, 2);
            json_decref(j);
            return NULL;
        }
        lua_pop(L, 1);
    }
    return j;
}

json_t *lua_json_from(lua_State *L, int idx, char *err, size_t errlen)
{
    return from(L, idx, 0, err, errlen);
}

static int push(lua_State *L, const json_t *j, int depth, char *err, size_t errlen)
{
    if (!lua_checkstack(L, 3)) {
        snprintf(err, errlen, "nesting too deep for the Lua stack");
        return -1;
    }
    switch (json_typeof(j)) {
    case JSON_OBJECT:
    case JSON_ARRAY:
        if (depth > LUA_JSON_MAX_DEPTH) {
            snprintf(err, errlen, "nesting deeper than %d", LUA_JSON_MAX_DEPTH);
            return -1;
        }
        break;
    case JSON_STRING:
        lua_pushlstring(L, json_string_value(j), json_string_length(j));
        return 0;
    case JSON_INTEGER:
        lua_pushinteger(L, (lua_Integer)json_integer_value(j));
        return 0;
    case JSON_REAL:
        lua_pushnumber(L, json_real_value(j));
        return 0;
    case JSON_TRUE:
    case JSON_FALSE:
        lua_pushboolean(L, json_is_true(j));
        return 0;
    default:
        lua_pushnil(L);
        return 0;
    }
    if (json_is_object(j)) {
        lua_createtable(L, 0, (int)json_object_size(j));
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)j, k, v)
        {
            if (push(L, v, depth + 1, err, errlen) < 0) {
                lua_pop(L, 1);
                return -1;
            }
            lua_setfield(L, -2, k);
        }
        return 0;
    }
    lua_createtable(L, (int)json_array_size(j), 0);
    for (size_t i = 0; i < json_array_size(j); i++) {
        if (push(L, json_array_get(j, i), depth + 1, err, errlen) < 0) {
            lua_pop(L, 1);
            return -1;
        }
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 0;
}

int lua_json_push(lua_State *L, const json_t *j, char *err, size_t errlen)
{
    return push(L, j, 0, err, errlen);
}
