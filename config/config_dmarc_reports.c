/* dmarc_reports { org_name = "...", email = "...", interval = "24h", send = false }: with the
 * block present, every DMARC evaluation is recorded (reports/dmarc_store.c) and
 * `sluice dmarc-report` builds the aggregate reports from them. */
#include "config/config_dmarc_reports.h"
#include "config/config.h"
#include "config/config_dsl.h"
#include "lua/lua_fields.h"

#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void dmarc_reports_cfg_free(struct dmarc_reports_cfg *d)
{
    free(d->org_name);
    free(d->email);
    d->org_name = d->email = NULL;
}

/* "24h", "30m", "1d" or seconds. */
static int parse_interval(lua_State *L, long long *secs, char *err, size_t errlen)
{
    lua_getfield(L, 1, "interval");
    int rc = 0;
    if (lua_isinteger(L, -1)) {
        *secs = (long long)lua_tointeger(L, -1);
    } else if (lua_type(L, -1) == LUA_TSTRING) {
        const char *s = lua_tostring(L, -1);
        char *end;
        long long v = strtoll(s, &end, 10);
        long long unit = strcmp(end, "s") == 0   ? 1
                         : strcmp(end, "m") == 0 ? 60
                         : strcmp(end, "h") == 0 ? 3600
                         : strcmp(end, "d") == 0 ? 86400
                                                 : 0;
        if (end == s || unit == 0) {
            snprintf(err, errlen, "dmarc_reports: interval '%s' must be like \"24h\" or \"1d\"", s);
            rc = -1;
        }
        *secs = v * unit;
    } else if (!lua_isnil(L, -1)) {
        snprintf(err, errlen, "dmarc_reports: interval must be seconds or a string like \"24h\"");
        rc = -1;
    }
    lua_pop(L, 1);
    /* RFC 7489 §7.2: reports cover at least an hour; a day is the default and the norm. */
    if (rc == 0 && (*secs < 3600 || *secs > 7 * 86400)) {
        snprintf(err, errlen, "dmarc_reports: interval must be between 1h and 7d");
        rc = -1;
    }
    return rc;
}

static int parse(lua_State *L, struct dmarc_reports_cfg *d, char *err, size_t errlen)
{
    static const char *const keys[] = {"org_name", "email", "interval", "send", NULL};
    if (lf_check_keys(L, 1, "dmarc_reports", keys, err, errlen) < 0 ||
        lf_string(L, 1, "org_name", true, &d->org_name, err, errlen) < 0 ||
        lf_string(L, 1, "email", true, &d->email, err, errlen) < 0 ||
        lf_bool(L, 1, "send", &d->send, err, errlen) < 0 ||
        parse_interval(L, &d->interval_s, err, errlen) < 0)
        return -1;
    if (!strchr(d->email, '@')) {
        snprintf(err, errlen, "dmarc_reports: email '%s' is not an address", d->email);
        return -1;
    }
    return 0;
}

static int ctor(lua_State *L)
{
    struct config *cfg = config_dsl_config(L);
    int line =
        config_dsl_block(L, "dmarc_reports", "dmarc_reports { ... }", &cfg->dmarc_reports.line);
    char err[512] = "";
    if (parse(L, &cfg->dmarc_reports, err, sizeof err) < 0)
        return config_dsl_raise(L, line, "dmarc_reports", err);
    return 0;
}

void config_dmarc_reports_register(lua_State *L, struct config *cfg, const char *path)
{
    cfg->dmarc_reports.interval_s = 86400;
    (void)path;
    lua_register(L, "dmarc_reports", ctor);
}

void dmarc_reports_cfg_describe(const struct config *cfg, FILE *out)
{
    const struct dmarc_reports_cfg *d = &cfg->dmarc_reports;
    if (!d->line)
        return;
    fprintf(out,
            "dmarc reports (line %d): as \"%s\" <%s>, every %lld s, %s; evaluations recorded "
            "in %s/dmarc/evaluations.db%s\n",
            d->line, d->org_name, d->email, d->interval_s,
            d->send ? "sent by serve through bounce_relay" : "not sent (send = false)",
            cfg->server.data_dir ? cfg->server.data_dir : ".",
            cfg->server.auth_checks ? "" : " (but auth_checks is off: nothing is evaluated)");
}
