/* scan { rspamd = "http://127.0.0.1:11333", clamd = "127.0.0.1:3310" | "unix:/path",
 *        timeout_ms = 10000, max_size = 20 * 1024 * 1024 } */
#include "config/config_scan.h"
#include "config/config.h"
#include "config/lua_fields.h"
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

static int call_line(lua_State *L)
{
    lua_Debug ar;
    if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "l", &ar) && ar.currentline > 0)
        return ar.currentline;
    return 0;
}

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
    struct config *cfg = lua_touserdata(L, lua_upvalueindex(1));
    const char *path = lua_tostring(L, lua_upvalueindex(2));
    int line = call_line(L);
    char err[512] = "";
    struct scan_cfg *s = &cfg->scan;
    if (lua_gettop(L) != 1 || !lua_istable(L, 1)) {
        snprintf(err, sizeof err,
                 "scan expects a table: scan { rspamd = \"http://127.0.0.1:11333\", clamd = "
                 "\"127.0.0.1:3310\" }");
    } else if (s->line) {
        snprintf(err, sizeof err, "scan { } is given twice (first at line %d)", s->line);
    } else {
        static const char *const keys[] = {"rspamd", "clamd", "timeout_ms", "max_size", NULL};
        s->line = line;
        s->timeout_ms = SCAN_DEFAULT_TIMEOUT_MS;
        s->max_size = SCAN_DEFAULT_MAX_SIZE;
        if (lf_check_keys(L, 1, "scan", keys, err, sizeof err) == 0 &&
            lf_string(L, 1, "rspamd", false, &s->rspamd, err, sizeof err) == 0 &&
            lf_string(L, 1, "clamd", false, &s->clamd, err, sizeof err) == 0 &&
            lf_integer(L, 1, "timeout_ms", 1, 3600000, &s->timeout_ms, err, sizeof err) == 0 &&
            lf_integer(L, 1, "max_size", 1, 1LL << 40, &s->max_size, err, sizeof err) == 0 &&
            validate(s, err, sizeof err) == 0)
            return 0;
    }
    lua_pushfstring(L, "%s:%d: %s", path, line, err);
    return lua_error(L);
}

void config_scan_register(lua_State *L, struct config *cfg, const char *path)
{
    lua_pushlightuserdata(L, cfg);
    lua_pushstring(L, path);
    lua_pushcclosure(L, scan_ctor, 2);
    lua_setglobal(L, "scan");
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
