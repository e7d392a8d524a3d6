/* dmarc { tree_walk = true }: how DMARC finds policy records and organizational domains. */
#include "config/config_dmarc.h"
#include "config/config.h"
#include "config/lua_fields.h"

#include <lauxlib.h>
#include <lua.h>

static int dmarc_ctor(lua_State *L)
{
    struct config *cfg = lua_touserdata(L, lua_upvalueindex(1));
    const char *path = lua_touserdata(L, lua_upvalueindex(2));
    lua_Debug ar;
    int line = 0;
    if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "l", &ar) && ar.currentline > 0)
        line = ar.currentline;
    if (lua_gettop(L) != 1 || !lua_istable(L, 1))
        return luaL_error(L, "%s:%d: dmarc expects a table: dmarc { tree_walk = true }", path,
                          line);
    if (cfg->dmarc.line)
        return luaL_error(L, "%s:%d: dmarc { } is given twice (first at line %d)", path, line,
                          cfg->dmarc.line);
    cfg->dmarc.line = line;
    static const char *const keys[] = {"tree_walk", NULL};
    char err[512] = "";
    if (lf_check_keys(L, 1, "dmarc", keys, err, sizeof err) < 0 ||
        lf_bool(L, 1, "tree_walk", &cfg->dmarc.tree_walk, err, sizeof err) < 0)
        return luaL_error(L, "%s:%d: %s", path, line, err);
    return 0;
}

void config_dmarc_register(lua_State *L, struct config *cfg, const char *path)
{
    lua_pushlightuserdata(L, cfg);
    lua_pushlightuserdata(L, (void *)path);
    lua_pushcclosure(L, dmarc_ctor, 2);
    lua_setglobal(L, "dmarc");
}

void dmarc_cfg_describe(const struct config *cfg, FILE *out)
{
    if (!cfg->dmarc.line)
        return;
    fprintf(out, "dmarc (line %d): %s\n", cfg->dmarc.line,
            cfg->dmarc.tree_walk ? "DNS tree walk (RFC 9989)" : "public suffix list (RFC 7489)");
}
