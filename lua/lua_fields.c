/* Config table readers with uniform, field-naming error messages. */
#include "lua/lua_fields.h"
#include "core/cidr.h"
#include "core/xalloc.h"

#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *lf_typename(lua_State *L, int idx)
{
    return luaL_typename(L, idx);
}

int lf_check_keys(lua_State *L, int idx, const char *what, const char *const *allowed, char *err,
                  size_t errlen)
{
    idx = lua_absindex(L, idx);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING) {
            snprintf(err, errlen, "%s: unexpected positional value (use key = value)", what);
            lua_pop(L, 1);
            return -1;
        }
        const char *k = lua_tostring(L, -1);
        bool ok = false;
        for (size_t i = 0; allowed[i]; i++)
            if (strcmp(allowed[i], k) == 0)
                ok = true;
        if (!ok) {
            struct {
                char buf[512];
                size_t len;
            } list = {{0}, 0};
            for (size_t i = 0; allowed[i] && list.len < sizeof list.buf - 64; i++)
                list.len += (size_t)snprintf(list.buf + list.len, sizeof list.buf - list.len,
                                             "%s%s", i ? ", " : "", allowed[i]);
            snprintf(err, errlen, "%s: unknown key '%s' (known: %s)", what, k, list.buf);
            lua_pop(L, 1);
            return -1;
        }
    }
    return 0;
}

int lf_string(lua_State *L, int idx, const char *key, bool required, char **out, char *err,
              size_t errlen)
{
    lua_getfield(L, idx, key);
    int rc = 0;
    if (lua_isnil(L, -1)) {
        if (required) {
            snprintf(err, errlen, "missing required field '%s'", key);
            rc = -1;
        }
    } else if (lua_type(L, -1) != LUA_TSTRING) {
        snprintf(err, errlen, "field '%s' must be a string, got %s", key, luaL_typename(L, -1));
        rc = -1;
    } else {
        size_t n;
        const char *s = lua_tolstring(L, -1, &n);
        if (strlen(s) != n) {
            snprintf(err, errlen, "field '%s' must not contain NUL bytes", key);
            rc = -1;
        } else {
            free(*out);
            *out = xstrdup(s);
        }
    }
    lua_pop(L, 1);
    return rc;
}

int lf_bool(lua_State *L, int idx, const char *key, bool *out, char *err, size_t errlen)
{
    lua_getfield(L, idx, key);
    int rc = 0;
    if (lua_isboolean(L, -1)) {
        *out = lua_toboolean(L, -1);
    } else if (!lua_isnil(L, -1)) {
        snprintf(err, errlen, "field '%s' must be true or false, got %s", key,
                 luaL_typename(L, -1));
        rc = -1;
    }
    lua_pop(L, 1);
    return rc;
}

int lf_integer(lua_State *L, int idx, const char *key, long long min, long long max, long long *out,
               char *err, size_t errlen)
{
    lua_getfield(L, idx, key);
    int rc = 0;
    if (!lua_isnil(L, -1)) {
        int isint = 0;
        lua_Integer v = lua_tointegerx(L, -1, &isint);
        if (lua_type(L, -1) != LUA_TNUMBER || !isint) {
            snprintf(err, errlen, "field '%s' must be an integer, got %s", key,
                     lua_type(L, -1) == LUA_TNUMBER ? "a fraction" : luaL_typename(L, -1));
            rc = -1;
        } else if (v < min || v > max) {
            snprintf(err, errlen, "field '%s' must be between %lld and %lld, got %lld", key, min,
                     max, (long long)v);
            rc = -1;
        } else {
            *out = v;
        }
    }
    lua_pop(L, 1);
    return rc;
}

void lf_free_list(char **list, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(list[i]);
    free(list);
}

int lf_string_list(lua_State *L, int idx, const char *key, char ***out, size_t *count, char *err,
                   size_t errlen)
{
    lua_getfield(L, idx, key);
    int rc = 0;
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return 0;
    }
    if (lua_type(L, -1) == LUA_TSTRING) {
        *out = xcalloc(1, sizeof **out);
        (*out)[0] = xstrdup(lua_tostring(L, -1));
        *count = 1;
    } else if (lua_type(L, -1) == LUA_TTABLE) {
        size_t n = (size_t)lua_rawlen(L, -1);
        /* Reject non-sequence keys: a list with holes or named keys is a typo waiting. */
        size_t total = 0;
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            lua_pop(L, 1);
            total++;
        }
        if (total != n) {
            snprintf(err, errlen, "field '%s' must be a list of strings", key);
            lua_pop(L, 1);
            return -1;
        }
        char **list = xcalloc(n + 1, sizeof *list);
        for (size_t i = 0; i < n; i++) {
            lua_rawgeti(L, -1, (lua_Integer)i + 1);
            if (lua_type(L, -1) != LUA_TSTRING) {
                snprintf(err, errlen, "field '%s' item %zu must be a string, got %s", key, i + 1,
                         luaL_typename(L, -1));
                lua_pop(L, 1);
                lf_free_list(list, i);
                rc = -1;
                break;
            }
            list[i] = xstrdup(lua_tostring(L, -1));
            lua_pop(L, 1);
        }
        if (rc == 0) {
            *out = list;
            *count = n;
        }
    } else {
        snprintf(err, errlen, "field '%s' must be a string or a list of strings, got %s", key,
                 luaL_typename(L, -1));
        rc = -1;
    }
    lua_pop(L, 1);
    return rc;
}

int lf_cidr_list(lua_State *L, int idx, const char *key, const char *what, struct cidr **out,
                 size_t *n, char *err, size_t errlen)
{
    char **list = NULL;
    size_t count = 0;
    if (lf_string_list(L, idx, key, &list, &count, err, errlen) < 0)
        return -1;
    int rc = 0;
    *out = count ? xcalloc(count, sizeof **out) : NULL;
    *n = count;
    for (size_t i = 0; rc == 0 && i < count; i++) {
        const char *why;
        if (cidr_parse(list[i], &(*out)[i], &why) < 0) {
            snprintf(err, errlen, "%s: '%s' in %s is not a CIDR block: %s", what, list[i], key,
                     why);
            rc = -1;
        }
    }
    lf_free_list(list, count);
    return rc;
}
