/* What action parsers may use of the config being loaded: nested action lists (e.g. the
 * quarantine actions of bounce_on_dmarc_fail) and the config file's path. config/ registers
 * the functions once it starts loading, so that actions/ needs nothing of config/ above it. */
#ifndef SLUICE_ACTION_DSL_H
#define SLUICE_ACTION_DSL_H

#include <stddef.h>

struct lua_State;
struct action;

struct action_dsl {
    /* Moves the actions listed in t[key] (table at idx) into *out (caller owns them: free each
     * with action_free and the array with free). Absent key: *out = NULL, *n = 0. */
    int (*take_actions)(struct lua_State *L, int idx, const char *key, struct action ***out,
                        size_t *n, char *err, size_t errlen);
    /* The path of the config file being loaded by L (for paths relative to it), or NULL. */
    const char *(*path)(struct lua_State *L);
};

/* Registers dsl (static storage: it must outlive every later parse). Called by config_load on
 * the thread that loads configs, which is also the only one that runs action parsers. */
void action_dsl_register(const struct action_dsl *dsl);

/* The registered take_actions; without a registration, -1 with err saying so. */
int action_dsl_take_actions(struct lua_State *L, int idx, const char *key, struct action ***out,
                            size_t *n, char *err, size_t errlen);
/* The registered path; NULL without a registration. */
const char *action_dsl_path(struct lua_State *L);

#endif
