/* bounce { smtp_reply_code, status_code, message, sender }: refuses the rule's recipients.
 * The message may name the virus found by the scan with {virus}.
 * When every recipient of the message ends up refused, the reply to DATA is this bounce: the
 * sending server returns the mail, and sluice never sends backscatter. */
#include "actions/action.h"
#include "actions/bounce_reply.h"
#include "lua/lua_fields.h"
#include "core/message.h"
#include "core/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int bounce_parse(struct lua_State *L, int idx, void **state, char *err, size_t errlen)
{
    static const char *const keys[] = {"smtp_reply_code", "status_code", "message", "sender", NULL};
    struct bounce_reply *b = xcalloc(1, sizeof *b);
    *state = b;
    if (lf_check_keys(L, idx, "bounce", keys, err, errlen) < 0)
        return -1;
    return bounce_reply_parse(L, idx, b, "550", "5.7.1", "Message rejected by policy", err, errlen);
}

/* "{virus}" in the message stands for the virus scan's signature name (printable, no spaces:
 * it cannot break the reply). */
static void expand_virus(char *reply, size_t size, const char *name)
{
    char *at = strstr(reply, "{virus}");
    if (!at)
        return;
    char rest[512];
    snprintf(rest, sizeof rest, "%s", at + 7);
    snprintf(at, size - (size_t)(at - reply), "%s%s", name[0] ? name : "unknown", rest);
}

static enum action_status bounce_run(const void *state, struct action_ctx *ctx)
{
    const struct bounce_reply *b = state;
    char reply[512];
    bounce_reply_format(b, reply, sizeof reply);
    expand_virus(reply, sizeof reply, ctx->msg->virus_name);
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
    .delivers = true,
    .parse = bounce_parse,
    .run = bounce_run,
    .describe = bounce_describe,
    .free_state = bounce_free,
};
