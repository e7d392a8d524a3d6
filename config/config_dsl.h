/* What action parsers may use of the config DSL: taking a nested list of actions (e.g. the
 * quarantine actions of bounce_on_dmarc_fail) out of a config table. */
#ifndef SLUICE_CONFIG_DSL_H
#define SLUICE_CONFIG_DSL_H

#include <stddef.h>

struct lua_State;
struct action;

/* Moves the actions listed in t[key] (table at idx) into *out (caller owns them: free each with
 * action_free and the array with free). Absent key: *out = NULL, *n = 0. */
int config_take_actions(struct lua_State *L, int idx, const char *key, struct action ***out,
                        size_t *n, char *err, size_t errlen);

/* The path of the config file being loaded by the state L (for paths relative to it). */
const char *config_dsl_path(struct lua_State *L);

#endif
