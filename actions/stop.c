/* stop { scope = "rule_set" | "rule" }: ends the chain (SES StopAction) or just this rule. */
#include "actions/action.h"
#include "lua/lua_fields.h"
#include "core/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct stop_state {
    int rule_only;
};

static int stop_parse(struct lua_State *L, int idx, void **state, char *err, size_t errlen)
{
    static const char *const keys[] = {"scope", NULL};
    struct stop_state *s = xcalloc(1, sizeof *s);
    *state = s;
    char *scope = NULL;
    if (lf_check_keys(L, idx, "stop", keys, err, errlen) < 0 ||
        lf_string(L, idx, "scope", false, &scope, err, errlen) < 0)
        return -1;
    int rc = 0;
    if (scope && strcmp(scope, "rule") == 0) {
        s->rule_only = 1;
    } else if (scope && strcmp(scope, "rule_set") != 0) {
        snprintf(err, errlen, "stop: scope must be \"rule_set\" or \"rule\", got \"%s\"", scope);
        rc = -1;
    }
    free(scope);
    return rc;
}

static enum action_status stop_run(const void *state, struct action_ctx *ctx)
{
    const struct stop_state *s = state;
    return s->rule_only ? ACTION_STOP_RULE : ACTION_STOP_RULE_SET;
}

static void stop_describe(const void *state, struct buf *out)
{
    const struct stop_state *s = state;
    buf_puts(out, s->rule_only ? "scope=rule" : "scope=rule_set");
}

const struct action_type action_stop = {
    .name = "stop",
    .parse = stop_parse,
    .run = stop_run,
    .describe = stop_describe,
    .free_state = free,
};
