/* dmarc { tree_walk = true }: how DMARC finds policy records and organizational domains. */
#include "config/config_dmarc.h"
#include "config/config.h"
#include "config/config_dsl.h"
#include "lua/lua_fields.h"

#include <lauxlib.h>
#include <lua.h>

static int dmarc_ctor(lua_State *L)
{
    struct config *cfg = config_dsl_config(L);
    int line = config_dsl_block(L, "dmarc", "dmarc { tree_walk = true }", &cfg->dmarc.line);
    static const char *const keys[] = {"tree_walk", NULL};
    char err[512] = "";
    if (lf_check_keys(L, 1, "dmarc", keys, err, sizeof err) < 0 ||
        lf_bool(L, 1, "tree_walk", &cfg->dmarc.tree_walk, err, sizeof err) < 0)
        return config_dsl_raise(L, line, "dmarc", err);
    return 0;
}

void config_dmarc_register(lua_State *L, struct config *cfg, const char *path)
{
    (void)path;
    lua_register(L, "dmarc", dmarc_ctor);
}

void dmarc_cfg_describe(const struct config *cfg, FILE *out)
{
    if (!cfg->dmarc.line)
        return;
    fprintf(out, "dmarc (line %d): %s\n", cfg->dmarc.line,
            cfg->dmarc.tree_walk ? "DNS tree walk (RFC 9989)" : "public suffix list (RFC 7489)");
}
