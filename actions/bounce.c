/* bounce { smtp_reply_code, status_code, message, sender }: refuses the rule's recipients.
 * When every recipient of the message ends up refused, the reply to DATA is this bounce: the
 * sending server returns the mail, and sluice never sends backscatter. */
#include "actions/action.h"
#include "actions/bounce_reply.h"
#include "config/lua_fields.h"
#include "core/xalloc.h"

#include <stdlib.h>

static int bounce_parse(struct lua_State *L, int idx, void **state, char *err, size_t errlen)
{
    static const char *const keys[] = {"smtp_reply_code", "status_code", "message", "sender", NULL};
    struct bounce_reply *b = xcalloc(1, sizeof *b);
    *state = b;
    if (lf_check_keys(L, idx, "bounce", keys, err, errlen) < 0)
        return -1;
    return bounce_reply_parse(L, idx, b, "550", "5.7.1", "Message rejected by policy", err, errlen);
}

static enum action_status bounce_run(const void *state, struct action_ctx *ctx)
{
    const struct bounce_reply *b = state;
    char reply[512];
    bounce_reply_format(b, reply, sizeof reply);
    action_refuse_rcpts(ctx, reply, b->sender);
    return ACTION_OK;
}

static void bounce_describe(const void *state, struct buf *out)
{
    const struct bounce_reply *b = state;
    buf_printf(out, "reply=\"%s %s %s\"", b->code, b->status, b->message);
}

static void bounce_free(void *state)
{
    if (!state)
        return;
    bounce_reply_free(state);
    free(state);
}

const struct action_type action_bounce = {
    .name = "bounce",
    .parse = bounce_parse,
    .run = bounce_run,
    .describe = bounce_describe,
    .free_state = bounce_free,
};
