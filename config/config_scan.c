/* scan { rspamd = "http://127.0.0.1:11333", clamd = "127.0.0.1:3310" | "unix:/path",
 *        timeout_ms = 10000, max_size = 20 * 1024 * 1024 } */
#include "config/config_scan.h"
#include "config/config.h"
#include "config/config_dsl.h"
#include "lua/lua_fields.h"
#include "core/sockaddr.h"
#include "core/xalloc.h"
#include "rules/ruleset.h"

#include <lauxlib.h>
#include <lua.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

#define SCAN_DEFAULT_TIMEOUT_MS 10000
#define SCAN_DEFAULT_MAX_SIZE (20LL << 20)

static int validate(struct scan_cfg *s, char *err, size_t errlen)
{
    if (!s->rspamd && !s->clamd) {
        snprintf(err, errlen,
                 "scan: give rspamd = \"http://host:port\" and/or clamd = "
                 "\"ip:port\" or \"unix:/path\"");
        return -1;
    }
    if (s->rspamd) {
        size_t n = strlen(s->rspamd);
        bool http = strncasecmp(s->rspamd, "http://", 7) == 0 && n > 7;
        bool https = strncasecmp(s->rspamd, "https://", 8) == 0 && n > 8;
        if ((!http && !https) || strpbrk(s->rspamd, " \t\r\n?#")) {
            snprintf(err, errlen,
                     "scan: rspamd '%s' must be the base URL of rspamd's normal worker, like "
                     "\"http://127.0.0.1:11333\"",
                     s->rspamd);
            return -1;
        }
        while (n > 8 && s->rspamd[n - 1] == '/') /* the path /checkv2 is appended */
            s->rspamd[--n] = '\0';
    }
    if (s->clamd) {
        if (strncmp(s->clamd, "unix:", 5) == 0) {
            const char *p = s->clamd + 5;
            if (p[0] != '/' || strlen(p) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
                snprintf(err, errlen,
                         "scan: clamd '%s' must name an absolute socket path shorter than %zu "
                         "bytes, like \"unix:/run/clamav/clamd.ctl\"",
                         s->clamd, sizeof(((struct sockaddr_un *)0)->sun_path));
                return -1;
            }
        } else {
            struct sockaddr_storage ss;
            socklen_t sl;
            if (sockaddr_parse(s->clamd, &ss, &sl) < 0) {
                snprintf(err, errlen,
                         "scan: clamd '%s' must be numeric \"ip:port\" or \"unix:/path\"",
                         s->clamd);
                return -1;
            }
        }
    }
    return 0;
}

static int scan_ctor(lua_State *L)
{
    struct config *cfg = config_dsl_config(L);
    struct scan_cfg *s = &cfg->scan;
    int line = config_dsl_block(
        L, "scan", "scan { rspamd = \"http://127.0.0.1:11333\", clamd = \"127.0.0.1:3310\" }",
        &s->line);
    static const char *const keys[] = {"rspamd", "clamd", "timeout_ms", "max_size", NULL};
    char err[512] = "";
    s->timeout_ms = SCAN_DEFAULT_TIMEOUT_MS;
    s->max_size = SCAN_DEFAULT_MAX_SIZE;
    if (lf_check_keys(L, 1, "scan", keys, err, sizeof err) < 0 ||
        lf_string(L, 1, "rspamd", false, &s->rspamd, err, sizeof err) < 0 ||
        lf_string(L, 1, "clamd", false, &s->clamd, err, sizeof err) < 0 ||
        lf_integer(L, 1, "timeout_ms", 1, 3600000, &s->timeout_ms, err, sizeof err) < 0 ||
        lf_integer(L, 1, "max_size", 1, 1LL << 40, &s->max_size, err, sizeof err) < 0 ||
        validate(s, err, sizeof err) < 0)
        return config_dsl_raise(L, line, "scan", err);
    return 0;
}

void config_scan_register(lua_State *L, struct config *cfg, const char *path)
{
    (void)cfg;
    (void)path;
    lua_register(L, "scan", scan_ctor);
}

void scan_cfg_free(struct scan_cfg *s)
{
    free(s->rspamd);
    free(s->clamd);
    s->rspamd = s->clamd = NULL;
}

void scan_cfg_describe(const struct scan_cfg *s, FILE *out)
{
    if (!s->line)
        return;
    fprintf(out, "scan (line %d): rspamd %s, clamd %s, timeout %lld ms, max size %lld bytes\n",
            s->line, s->rspamd ? s->rspamd : "(none)", s->clamd ? s->clamd : "(none)",
            s->timeout_ms, s->max_size);
}

int config_scan_warn(const struct config *c, FILE *out)
{
    int n = 0;
    for (size_t i = 0; i < c->nsets; i++) {
        const struct rule_set *rs = c->sets[i];
        for (size_t j = 0; j < rs->nrules; j++) {
            const struct rule *r = rs->rules[j];
            if (!r->enabled || !r->scan || (c->scan.rspamd && c->scan.clamd))
                continue;
            const char *missing = !c->scan.rspamd && !c->scan.clamd ? "no scanner"
                                  : !c->scan.rspamd                 ? "no rspamd"
                                                                    : "no clamd";
            const char *which = !c->scan.rspamd && !c->scan.clamd ? "spam and virus verdicts"
                                : !c->scan.rspamd                 ? "spam verdict"
                                                                  : "virus verdict";
            fprintf(out,
                    "%s:%d: warning: rule '%s' has scan = true but %s is configured in scan { }: "
                    "its %s will be PROCESSING_FAILED\n",
                    c->path, r->line, r->name, missing, which);
            n++;
        }
    }
    return n;
}
