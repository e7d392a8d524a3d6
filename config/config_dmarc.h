/* The dmarc { } block of the config DSL (struct dmarc_cfg lives in config.h). */
#ifndef SLUICE_CONFIG_DMARC_H
#define SLUICE_CONFIG_DMARC_H

#include <stdio.h>

struct lua_State;
struct config;

/* Defines the global dmarc{} constructor, which fills cfg->dmarc; errors name path and the
 * line of the call. path must outlive the Lua state. */
void config_dmarc_register(struct lua_State *L, struct config *cfg, const char *path);
/* The `sluice check` summary line for DMARC (only when the block is given). */
void dmarc_cfg_describe(const struct config *cfg, FILE *out);

#endif
