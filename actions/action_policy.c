/* The failure policy every action takes (`on_failure`, `expire_after`), read by the DSL before
 * the action's own parser sees its table. */
#include "actions/action.h"
#include "lua/lua_fields.h"

#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "90" seconds, or a string with a unit: "500ms", "30s", "15m", "4h", "2d". */
static int parse_duration(lua_State *L, int idx, long long *ms, char *err, size_t errlen)
{
    if (lua_isinteger(L, idx)) {
        *ms = (long long)lua_tointeger(L, idx) * 1000;
    } else if (lua_type(L, idx) == LUA_TSTRING) {
        const char *s = lua_tostring(L, idx);
        char *end;
        long long v = strtoll(s, &end, 10);
        static const struct {
            const char *unit;
            long long ms;
        } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
        size_t u = 0;
        while (u < 5 && strcmp(end, units[u].unit) != 0)
            u++;
        if (end == s || u == 5) {
            snprintf(err, errlen,
                     "expire_after '%s' must be seconds or like \"30s\", \"15m\", "
                     "\"4h\"",
                     s);
            return -1;
        }
        *ms = v * units[u].ms;
    } else {
        snprintf(err, errlen, "expire_after must be seconds or a string like \"4h\"");
        return -1;
    }
    if (*ms <= 0) {
        snprintf(err, errlen, "expire_after must be positive");
        return -1;
    }
    return 0;
}

int action_policy_parse(lua_State *L, int idx, struct action *a, char *err, size_t errlen)
{
    a->expire_after_ms = EXPIRE_AFTER_DEFAULT_MS;
    a->on_failure = ON_FAILURE_DEFAULT;
    char *policy = NULL;
    if (lf_string(L, idx, "on_failure", false, &policy, err, errlen) < 0)
        return -1;
    int rc = 0;
    if (policy) {
        static const char *const names[] = {"tempfail", "retry", "continue", "drop"};
        int found = -1;
        for (int i = 0; i < 4; i++)
            if (strcmp(policy, names[i]) == 0)
                found = i;
        if (found < 0) {
            snprintf(err, errlen,
                     "on_failure must be \"tempfail\", \"retry\", \"continue\" or "
                     "\"drop\", got \"%s\"",
                     policy);
            rc = -1;
        } else {
            a->on_failure = (enum on_failure)(found + 1);
        }
        free(policy);
    }
    lua_getfield(L, idx, "expire_after");
    if (rc == 0 && !lua_isnil(L, -1)) {
        a->expire_given = true;
        rc = parse_duration(L, lua_gettop(L), &a->expire_after_ms, err, errlen);
    }
    lua_pop(L, 1);
    /* Take the keys out so the action's own parser sees only its fields. */
    lua_pushnil(L);
    lua_setfield(L, idx, "on_failure");
    lua_pushnil(L);
    lua_setfield(L, idx, "expire_after");
    return rc;
}

int action_policy_check(const struct action *a, char *err, size_t errlen)
{
    if (a->on_failure == ON_FAILURE_RETRY && !a->type->deliver) {
        snprintf(err, errlen,
                 "on_failure = \"retry\" needs a post-acceptance action; %s runs in the session "
                 "(use \"tempfail\", \"continue\" or \"drop\")",
                 a->type->name);
        return -1;
    }
    if (a->expire_given && !a->type->deliver) {
        snprintf(err, errlen, "expire_after applies to post-acceptance actions only");
        return -1;
    }
    return 0;
}

enum on_failure action_effective_policy(const struct action *a)
{
    if (a->on_failure != ON_FAILURE_DEFAULT)
        return a->on_failure;
    if (a->type->default_on_failure != ON_FAILURE_DEFAULT)
        return a->type->default_on_failure;
    return a->type->deliver ? ON_FAILURE_RETRY : ON_FAILURE_TEMPFAIL;
}
