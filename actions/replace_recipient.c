/* replace_recipient { with = { "archive@example.test", ... } }: later actions, and later rules,
 * see these envelope recipients instead of the ones the rule matched (SES Mail Manager's
 * ReplaceRecipient). */
#include "actions/action.h"
#include "lua/lua_fields.h"
#include "core/address.h"
#include "core/xalloc.h"

#include <stdio.h>
#include <stdlib.h>

struct replace_state {
    char **with;
    size_t n;
};

static int replace_parse(struct lua_State *L, int idx, void **state, char *err, size_t errlen)
{
    static const char *const keys[] = {"with", NULL};
    struct replace_state *s = xcalloc(1, sizeof *s);
    *state = s;
    if (lf_check_keys(L, idx, "replace_recipient", keys, err, errlen) < 0 ||
        lf_string_list(L, idx, "with", &s->with, &s->n, err, errlen) < 0)
        return -1;
    if (s->n == 0) {
        snprintf(err, errlen, "replace_recipient: 'with' must list at least one address");
        return -1;
    }
    for (size_t i = 0; i < s->n; i++) {
        if (!address_valid(s->with[i])) {
            snprintf(err, errlen, "replace_recipient: '%s' is not a valid address", s->with[i]);
            return -1;
        }
    }
    return 0;
}

static enum action_status replace_run(const void *state, struct action_ctx *ctx)
{
    const struct replace_state *s = state;
    action_replace_rcpts(ctx, s->with, s->n);
    return ACTION_OK;
}

static void replace_describe(const void *state, struct buf *out)
{
    const struct replace_state *s = state;
    buf_puts(out, "with=");
    for (size_t i = 0; i < s->n; i++)
        buf_printf(out, "%s%s", i ? "," : "", s->with[i]);
}

static void replace_free(void *state)
{
    struct replace_state *s = state;
    if (!s)
        return;
    lf_free_list(s->with, s->n);
    free(s);
}

const struct action_type action_replace_recipient = {
    .name = "replace_recipient",
    .delivers = true,
    .parse = replace_parse,
    .run = replace_run,
    .describe = replace_describe,
    .free_state = replace_free,
};
