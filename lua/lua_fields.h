/* Typed field access for Lua tables (the config DSL, action and condition parsers). Every function
 * reads t[key] from the table at stack index idx and returns 0, or -1 with a message naming the
 * field in err. Strings are copied (the caller frees). Absent optional fields leave *out untouched.
 */
#ifndef SLUICE_LUA_FIELDS_H
#define SLUICE_LUA_FIELDS_H

#include <stdbool.h>
#include <stddef.h>

struct lua_State;
struct cidr;

/* Fails on any key not in allowed (NULL-terminated), and on non-string keys. */
int lf_check_keys(struct lua_State *L, int idx, const char *what, const char *const *allowed,
                  char *err, size_t errlen);
int lf_string(struct lua_State *L, int idx, const char *key, bool required, char **out, char *err,
              size_t errlen);
int lf_bool(struct lua_State *L, int idx, const char *key, bool *out, char *err, size_t errlen);
int lf_integer(struct lua_State *L, int idx, const char *key, long long min, long long max,
               long long *out, char *err, size_t errlen);
/* A list of strings; a single string is accepted as a list of one. */
int lf_string_list(struct lua_State *L, int idx, const char *key, char ***out, size_t *count,
                   char *err, size_t errlen);
void lf_free_list(char **list, size_t count);
/* A list of CIDR blocks (a single string is a list of one) into *out (caller frees), *n of
 * them; absent leaves *out NULL. Errors say "what: 'x' in key is not a CIDR block: why". */
int lf_cidr_list(struct lua_State *L, int idx, const char *key, const char *what, struct cidr **out,
                 size_t *n, char *err, size_t errlen);
const char *lf_typename(struct lua_State *L, int idx);

#endif
