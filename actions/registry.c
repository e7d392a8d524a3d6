/* The table of action types: adding an action touches its own file and one line here. */
#include "actions/action.h"

#include "delivery/maildir.h"
#include "core/message.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const struct action_type action_store;
extern const struct action_type action_add_header;
extern const struct action_type action_stop;
extern const struct action_type action_bounce;
extern const struct action_type action_bounce_on_dmarc_fail;
extern const struct action_type action_drop;
extern const struct action_type action_webhook;
extern const struct action_type action_replace_recipient;
extern const struct action_type action_relay;
extern const struct action_type action_s3;
extern const struct action_type action_lua;
extern const struct action_type action_dmarc_report_ingest;
extern const struct action_type action_lmtp;

/* One action per line, so adding one is a one-line change. */
// clang-format off
const struct action_type *const action_types[] = {
    &action_store,
    &action_add_header,
    &action_stop,
    &action_bounce,
    &action_bounce_on_dmarc_fail,
    &action_drop,
    &action_webhook,
    &action_replace_recipient,
    &action_relay,
    &action_s3,
    &action_lua,
    &action_dmarc_report_ingest,
    &action_lmtp,
    NULL,
};
// clang-format on

const struct action_type *action_type_find(const char *name)
{
    for (size_t i = 0; action_types[i]; i++)
        if (strcmp(action_types[i]->name, name) == 0)
            return action_types[i];
    return NULL;
}

void action_note(struct action_ctx *ctx, const char *fmt, ...)
{
    if (!ctx->note)
        return;
    char text[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    ctx->note(ctx->note_arg, text);
}

void action_refuse_rcpt(struct action_ctx *ctx, size_t rcpt, const char *reply, const char *sender)
{
    struct rcpt_outcome *o = &ctx->outcomes[rcpt];
    o->refused = 1;
    action_note(ctx, "%s refused: %s", ctx->msg->env.rcpts[rcpt], reply);
    snprintf(o->reply, sizeof o->reply, "%s", reply);
    snprintf(o->sender, sizeof o->sender, "%s", sender ? sender : "");
    maildir_discard_tag(ctx->batch, (int)rcpt);
}

void action_refuse_rcpts(struct action_ctx *ctx, const char *reply, const char *sender)
{
    for (size_t i = 0; i < ctx->nrcpts; i++)
        action_refuse_rcpt(ctx, ctx->rcpts[i], reply, sender);
}

void action_drop_rcpts(struct action_ctx *ctx)
{
    for (size_t i = 0; i < ctx->nrcpts; i++) {
        ctx->outcomes[ctx->rcpts[i]].dropped = 1;
        action_note(ctx, "%s dropped", ctx->msg->env.rcpts[ctx->rcpts[i]]);
    }
}

void action_settle_rcpts(const struct action *a, struct action_ctx *ctx)
{
    if (!a->type->delivers)
        return;
    for (size_t i = 0; i < ctx->nrcpts; i++)
        ctx->outcomes[ctx->rcpts[i]].settled = 1;
}

enum action_status action_run_list(struct action *const *list, size_t n, struct action_ctx *ctx)
{
    for (size_t i = 0; i < n; i++) {
        action_settle_rcpts(list[i], ctx);
        enum action_status st = list[i]->type->run(list[i]->state, ctx);
        if (st != ACTION_OK)
            return st;
    }
    return ACTION_OK;
}

void action_free(struct action *a)
{
    if (!a)
        return;
    if (a->type && a->type->free_state)
        a->type->free_state(a->state);
    free(a->params);
    free(a->config_file);
    free(a);
}
