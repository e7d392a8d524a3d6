/* store { maildir = TEMPLATE }: one durable copy per matched recipient (SES's S3 action,
 * local). Files are staged here and committed by the evaluator once the chain succeeded. */
#include "actions/action.h"
#include "delivery/maildir.h"
#include "actions/path_template.h"
#include "lua/lua_fields.h"
#include "core/message.h"
#include "core/xalloc.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

struct store_state {
    char *maildir;
};

static int store_parse(struct lua_State *L, int idx, void **state, char *err, size_t errlen)
{
    static const char *const keys[] = {"maildir", NULL};
    struct store_state *s = xcalloc(1, sizeof *s);
    *state = s;
    if (lf_check_keys(L, idx, "store", keys, err, errlen) < 0 ||
        lf_string(L, idx, "maildir", true, &s->maildir, err, errlen) < 0)
        return -1;
    return path_template_check(s->maildir, err, errlen);
}

static const char *store_check_rcpt(const void *state, const char *rule, const char *rcpt)
{
    const struct store_state *s = state;
    char path[PATH_MAX], err[256];
    if (path_template_expand(s->maildir, rcpt, rule, path, sizeof path, err, sizeof err) < 0)
        return "550 5.1.3 Recipient address cannot be stored safely (unsafe characters)";
    return NULL;
}

static enum action_status store_run(const void *state, struct action_ctx *ctx)
{
    const struct store_state *s = state;
    struct message *m = ctx->msg;
    for (size_t i = 0; i < ctx->nrcpts; i++) {
        const char *rcpt = m->rcpts[ctx->rcpts[i]];
        char path[PATH_MAX];
        if (path_template_expand(s->maildir, rcpt, ctx->rule_name, path, sizeof path, ctx->error,
                                 sizeof ctx->error) < 0)
            return ACTION_FAILED;
        if (ctx->dry_run) {
            action_note(ctx, "%s -> %s/new/", rcpt, path);
            continue;
        }
        action_note(ctx, "%s -> %s/new/", rcpt, path);
        struct buf head = {0};
        message_trace_headers(m, rcpt, &head);
        int rc = maildir_stage(ctx->batch, path, &head, &m->body, (int)ctx->rcpts[i], ctx->error,
                               sizeof ctx->error);
        buf_free(&head);
        if (rc < 0) {
            ctx->sys_errno = -rc;
            return ACTION_FAILED;
        }
    }
    return ACTION_OK;
}

static void store_describe(const void *state, struct buf *out)
{
    const struct store_state *s = state;
    buf_printf(out, "maildir=%s", s->maildir);
}

static void store_free(void *state)
{
    struct store_state *s = state;
    if (!s)
        return;
    free(s->maildir);
    free(s);
}

const struct action_type action_store = {
    .name = "store",
    .delivers = true,
    .parse = store_parse,
    .check_rcpt = store_check_rcpt,
    .run = store_run,
    .describe = store_describe,
    .free_state = store_free,
};
