/* The scan { } block of the config DSL: where the rspamd and clamd that judge spam and viruses
 * listen, with the time and size budget of a scan. */
#ifndef SLUICE_CONFIG_SCAN_H
#define SLUICE_CONFIG_SCAN_H

#include <stdio.h>

struct lua_State;
struct config;
struct scan_cfg;

/* Defines the global scan { ... } in L; it fills cfg->scan, raising "path:LINE: message". cfg
 * and path must outlive L. */
void config_scan_register(struct lua_State *L, struct config *cfg, const char *path);
void scan_cfg_free(struct scan_cfg *s);
/* One summary line for `sluice check` (nothing when the block is absent). */
void scan_cfg_describe(const struct scan_cfg *s, FILE *out);
/* Warns ("FILE:LINE: warning: ...") about each enabled rule with scan = true that lacks a
 * scanner: its verdicts will be PROCESSING_FAILED. Returns the number of warnings. */
int config_scan_warn(const struct config *c, FILE *out);

#endif
