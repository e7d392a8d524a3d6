/* The config DSL hook of the action parsers (see action_dsl.h). */
#include "actions/action_dsl.h"

#include <stdio.h>

static const struct action_dsl *registered;

void action_dsl_register(const struct action_dsl *dsl)
{
    registered = dsl;
}

int action_dsl_take_actions(struct lua_State *L, int idx, const char *key, struct action ***out,
                            size_t *n, char *err, size_t errlen)
{
    *out = NULL;
    *n = 0;
    if (!registered || !registered->take_actions) {
        snprintf(err, errlen, "%s: nested actions can only be given in a config file", key);
        return -1;
    }
    return registered->take_actions(L, idx, key, out, n, err, errlen);
}

const char *action_dsl_path(struct lua_State *L)
{
    return registered && registered->path ? registered->path(L) : NULL;
}
