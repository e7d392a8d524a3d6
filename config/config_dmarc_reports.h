/* The dmarc_reports { } block of the config DSL (struct dmarc_reports_cfg lives in config.h):
 * who we are in the DMARC aggregate reports we produce (RFC 7489 §7.2). */
#ifndef SLUICE_CONFIG_DMARC_REPORTS_H
#define SLUICE_CONFIG_DMARC_REPORTS_H

#include <stdio.h>

struct lua_State;
struct config;
struct dmarc_reports_cfg;

/* Sets the defaults in cfg->dmarc_reports and defines the global dmarc_reports{} constructor;
 * errors name path and the line of the call. path must outlive the Lua state. */
void config_dmarc_reports_register(struct lua_State *L, struct config *cfg, const char *path);
void dmarc_reports_cfg_free(struct dmarc_reports_cfg *d);
/* The `sluice check` line for the block (nothing when absent). */
void dmarc_reports_cfg_describe(const struct config *cfg, FILE *out);

#endif
