/* Lua values to JSON and back (jansson), without raising: a config table kept as JSON (the
 * parameters a spooled job carries) and pushed again as a table to rebuild the action. Lists
 * are tables with keys exactly 1..n (n > 0), objects tables with string keys only. */
#ifndef SLUICE_LUA_JSON_H
#define SLUICE_LUA_JSON_H

#include <stddef.h>

struct lua_State;
struct json_t;

#define LUA_JSON_MAX_DEPTH 64

/* The value at idx as a new JSON value (the caller json_decref's it), or NULL with the reason
 * in err: a function, userdata or thread, a NaN or infinity, a string that is not UTF-8, a
 * table mixing keys, nesting deeper than LUA_JSON_MAX_DEPTH. nil is JSON null. */
struct json_t *lua_json_from(struct lua_State *L, int idx, char *err, size_t errlen);

/* Pushes j as a Lua value (objects and arrays as tables, null as nil). Returns 0, or -1 with
 * nothing pushed and the reason in err when the nesting is too deep or the stack cannot grow.
 * Lua's own allocation failures raise as usual. */
int lua_json_push(struct lua_State *L, const struct json_t *j, char *err, size_t errlen);

#endif
