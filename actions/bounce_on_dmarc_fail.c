/* bounce_on_dmarc_fail { smtp_reply_code, status_code, message, quarantine = { actions } }:
 * the SES developer guide's DMARC bounce sample as one action. DMARC FAIL with policy REJECT
 * refuses the rule's recipients and ends the chain; FAIL with QUARANTINE runs the quarantine
 * actions (if any) and goes on; anything else goes on. */
#include "actions/action.h"
#include "actions/bounce_reply.h"
#include "actions/action_dsl.h"
#include "lua/lua_fields.h"
#include "core/message.h"
#include "core/xalloc.h"

#include <stdlib.h>

#define DMARC_BOUNCE_MESSAGE                                                                       \
    "Unauthenticated email is not accepted due to the sending domain's DMARC policy."

struct dmarc_bounce_state {
    struct bounce_reply reply;
    struct action **quarantine;
    size_t nquarantine;
};

static int dmarc_bounce_parse(struct lua_State *L, int idx, void **state, char *err, size_t errlen)
{
    static const char *const keys[] = {"smtp_reply_code", "status_code", "message",
                                       "sender",          "quarantine",  NULL};
    struct dmarc_bounce_state *s = xcalloc(1, sizeof *s);
    *state = s;
    if (lf_check_keys(L, idx, "bounce_on_dmarc_fail", keys, err, errlen) < 0 ||
        bounce_reply_parse(L, idx, &s->reply, "550", "5.7.1", DMARC_BOUNCE_MESSAGE, err, errlen) <
            0)
        return -1;
    return action_dsl_take_actions(L, idx, "quarantine", &s->quarantine, &s->nquarantine, err,
                                   errlen);
}

static enum action_status dmarc_bounce_run(const void *state, struct action_ctx *ctx)
{
    const struct dmarc_bounce_state *s = state;
    const struct verdicts *v = &ctx->msg->env.verdicts;
    if (v->dmarc != VERDICT_FAIL)
        return ACTION_OK;
    if (v->dmarc_policy == DMARC_POLICY_REJECT) {
        char reply[512];
        bounce_reply_format(&s->reply, reply, sizeof reply);
        action_refuse_rcpts(ctx, reply, s->reply.sender);
        return ACTION_STOP_RULE_SET;
    }
    if (v->dmarc_policy == DMARC_POLICY_QUARANTINE) {
        enum action_status st = action_run_list(s->quarantine, s->nquarantine, ctx);
        /* A stop inside the quarantine list ends what it says; failures propagate. */
        return st;
    }
    return ACTION_OK;
}

static void dmarc_bounce_describe(const void *state, struct buf *out)
{
    const struct dmarc_bounce_state *s = state;
    buf_printf(out, "reject=\"%s %s %s\" quarantine=[", s->reply.code, s->reply.status,
               s->reply.message);
    for (size_t i = 0; i < s->nquarantine; i++) {
        buf_printf(out, "%s%s", i ? ", " : "", s->quarantine[i]->type->name);
        if (s->quarantine[i]->type->describe) {
            buf_puts(out, " ");
            s->quarantine[i]->type->describe(s->quarantine[i]->state, out);
        }
    }
    buf_puts(out, "]");
}

static void dmarc_bounce_free(void *state)
{
    struct dmarc_bounce_state *s = state;
    if (!s)
        return;
    bounce_reply_free(&s->reply);
    for (size_t i = 0; i < s->nquarantine; i++)
        action_free(s->quarantine[i]);
    free(s->quarantine);
    free(s);
}

const struct action_type action_bounce_on_dmarc_fail = {
    .name = "bounce_on_dmarc_fail",
    .parse = dmarc_bounce_parse,
    .run = dmarc_bounce_run,
    .describe = dmarc_bounce_describe,
    .free_state = dmarc_bounce_free,
};
