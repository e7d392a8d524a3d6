/* What action parsers may use of the config DSL: taking a nested list of actions (e.g. the
 * quarantine actions of bounce_on_dmarc_fail) out of a config table. */
#ifndef SLUICE_CONFIG_DSL_H
#define SLUICE_CONFIG_DSL_H

#include <stddef.h>

struct lua_State;
struct action;
struct config;

/* Moves the actions listed in t[key] (table at idx) into *out (caller owns them: free each with
 * action_free and the array with free). Absent key: *out = NULL, *n = 0. */
int config_take_actions(struct lua_State *L, int idx, const char *key, struct action ***out,
                        size_t *n, char *err, size_t errlen);

/* The path of the config file being loaded by the state L (for paths relative to it). */
const char *config_dsl_path(struct lua_State *L);
/* The config being built by the state L. */
struct config *config_dsl_config(struct lua_State *L);
/* Starts a top-level block such as dns { }: checks that the call passes one table (else the
 * error shows usage) and that the block was not given before (*seen: the line it was first
 * given at, 0 if never); records and returns the line of the call. Raises "FILE:LINE: ..."
 * otherwise. */
int config_dsl_block(struct lua_State *L, const char *name, const char *usage, int *seen);
/* Raises "FILE:LINE: BLOCK: msg" for the config being loaded (BLOCK left out when msg starts
 * with it already); never returns. */
int config_dsl_raise(struct lua_State *L, int line, const char *block, const char *msg);

#endif
