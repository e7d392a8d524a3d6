/* dns { servers = { "127.0.0.1:5353" }, timeout_ms = 2000 }: the resolvers the authentication
 * checks (auth/dns.c) forward to, and how long one lookup may take. */
#include "config/config_dns.h"
#include "config/config.h"
#include "config/config_dsl.h"
#include "lua/lua_fields.h"
#include "core/sockaddr.h"

#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>

#define DNS_DEFAULT_TIMEOUT_MS 2000

void dns_cfg_free(struct dns_cfg *d)
{
    lf_free_list(d->servers, d->nservers);
    d->servers = NULL;
    d->nservers = 0;
}

static int dns_parse(lua_State *L, struct dns_cfg *d, char *err, size_t errlen)
{
    static const char *const keys[] = {"servers", "timeout_ms", NULL};
    if (lf_check_keys(L, 1, "dns", keys, err, errlen) < 0 ||
        lf_string_list(L, 1, "servers", &d->servers, &d->nservers, err, errlen) < 0 ||
        lf_integer(L, 1, "timeout_ms", 10, 600000, &d->timeout_ms, err, errlen) < 0)
        return -1;
    for (size_t i = 0; i < d->nservers; i++) {
        struct sockaddr_storage ss;
        socklen_t len;
        if (sockaddr_parse(d->servers[i], &ss, &len) < 0) {
            snprintf(err, errlen,
                     "dns: server '%s' is not a numeric \"ip:port\" or \"[ipv6]:port\"",
                     d->servers[i]);
            return -1;
        }
    }
    return 0;
}

static int dns_ctor(lua_State *L)
{
    struct config *cfg = config_dsl_config(L);
    int line = config_dsl_block(L, "dns", "dns { servers = { ... } }", &cfg->dns.line);
    char err[512] = "";
    if (dns_parse(L, &cfg->dns, err, sizeof err) < 0)
        return config_dsl_raise(L, line, "dns", err);
    return 0;
}

void config_dns_register(lua_State *L, struct config *cfg, const char *path)
{
    cfg->dns.timeout_ms = DNS_DEFAULT_TIMEOUT_MS;
    (void)path;
    lua_register(L, "dns", dns_ctor);
}

void dns_cfg_describe(const struct config *cfg, FILE *out)
{
    const struct dns_cfg *d = &cfg->dns;
    fprintf(out, "auth checks (SPF, DKIM, DMARC): %s; dns", cfg->server.auth_checks ? "on" : "off");
    if (d->line)
        fprintf(out, " (line %d)", d->line);
    fprintf(out, ":");
    if (d->nservers == 0)
        fprintf(out, " servers of /etc/resolv.conf");
    for (size_t i = 0; i < d->nservers; i++)
        fprintf(out, " %s", d->servers[i]);
    fprintf(out, ", timeout %lld ms\n", d->timeout_ms);
}
