/* drop {}: the rule's recipients are accepted and get nothing (SES Mail Manager Drop). */
#include "actions/action.h"
#include "lua/lua_fields.h"

static int drop_parse(struct lua_State *L, int idx, void **state, char *err, size_t errlen)
{
    static const char *const keys[] = {NULL};
    *state = NULL;
    return lf_check_keys(L, idx, "drop", keys, err, errlen);
}

static enum action_status drop_run(const void *state, struct action_ctx *ctx)
{
    action_drop_rcpts(ctx);
    return ACTION_OK;
}

const struct action_type action_drop = {
    .name = "drop",
    .delivers = true,
    .parse = drop_parse,
    .run = drop_run,
};
