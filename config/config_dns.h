/* The dns { } block of the config DSL (struct dns_cfg lives in auth/dns.h, which the DNS layer reads). */
#ifndef SLUICE_CONFIG_DNS_H
#define SLUICE_CONFIG_DNS_H

#include <stdio.h>

struct lua_State;
struct config;
struct dns_cfg;

/* Sets the defaults in cfg->dns and defines the global dns{} constructor, which fills
 * cfg->dns; errors name path and the line of the call. path must outlive the Lua state. */
void config_dns_register(struct lua_State *L, struct config *cfg, const char *path);
void dns_cfg_free(struct dns_cfg *d);
/* The `sluice check` summary line for authentication checks and their DNS. */
void dns_cfg_describe(const struct config *cfg, FILE *out);

#endif
