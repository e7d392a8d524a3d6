/* store { maildir = TEMPLATE, mode = "0600", dir_mode = "0700", group = NAME }: one durable
 * copy per matched recipient (SES's S3 action, local). Files are staged here and committed by
 * the evaluator once the chain succeeded. */
#include "actions/action.h"
#include "delivery/maildir.h"
#include "actions/path_template.h"
#include "lua/lua_fields.h"
#include "core/message.h"
#include "core/xalloc.h"

#include <grp.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct store_state {
    char *maildir;
    struct maildir_perms perms;
    char *group; /* as configured, for describe; NULL when not given */
};

/* "0640": octal, as chmod takes it (a Lua number 0640 would be decimal). The owner keeps what
 * delivery needs (need), and nobody else may write. */
static int parse_mode(const char *key, const char *text, mode_t need, mode_t *out, char *err,
                      size_t errlen)
{
    char *end;
    unsigned long v = strtoul(text, &end, 8);
    if (!*text || *end || strspn(text, "01234567") != strlen(text) || v > 0777) {
        snprintf(err, errlen, "%s must be an octal mode such as \"0640\", got \"%s\"", key, text);
        return -1;
    }
    if ((v & need) != need || (v & 0002)) {
        snprintf(err, errlen, "%s \"%s\" must give the owner %s and nobody else write access", key,
                 text, need == 0700 ? "rwx (0700)" : "rw (0600)");
        return -1;
    }
    *out = (mode_t)v;
    return 0;
}

/* The group must exist, and a sluice not running as root must be in it (else every delivery
 * would fail at fchown: better to say so at load). */
static int parse_group(const char *name, gid_t *out, char *err, size_t errlen)
{
    struct group gr, *res = NULL;
    char buf[4096];
    if (getgrnam_r(name, &gr, buf, sizeof buf, &res) != 0 || !res) {
        snprintf(err, errlen, "group \"%s\" does not exist", name);
        return -1;
    }
    *out = res->gr_gid;
    if (geteuid() == 0 || getegid() == *out)
        return 0;
    gid_t groups[256];
    int n = getgroups(256, groups);
    for (int i = 0; i < n; i++)
        if (groups[i] == *out)
            return 0;
    snprintf(err, errlen,
             "group \"%s\" is not one of this process's groups (uid %d): files could not be "
             "given to it",
             name, (int)geteuid());
    return -1;
}

static int store_parse(struct lua_State *L, int idx, void **state, char *err, size_t errlen)
{
    static const char *const keys[] = {"maildir", "mode", "dir_mode", "group", NULL};
    struct store_state *s = xcalloc(1, sizeof *s);
    s->perms = MAILDIR_PERMS_DEFAULT;
    *state = s;
    char *mode = NULL, *dir_mode = NULL;
    int rc = -1;
    if (lf_check_keys(L, idx, "store", keys, err, errlen) < 0 ||
        lf_string(L, idx, "maildir", true, &s->maildir, err, errlen) < 0 ||
        lf_string(L, idx, "mode", false, &mode, err, errlen) < 0 ||
        lf_string(L, idx, "dir_mode", false, &dir_mode, err, errlen) < 0 ||
        lf_string(L, idx, "group", false, &s->group, err, errlen) < 0)
        goto out;
    if ((mode && parse_mode("mode", mode, 0600, &s->perms.file_mode, err, errlen) < 0) ||
        (dir_mode && parse_mode("dir_mode", dir_mode, 0700, &s->perms.dir_mode, err, errlen) < 0) ||
        (s->group && parse_group(s->group, &s->perms.gid, err, errlen) < 0))
        goto out;
    rc = path_template_check(s->maildir, err, errlen);
out:
    free(mode);
    free(dir_mode);
    return rc;
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
        const char *rcpt = m->env.rcpts[ctx->rcpts[i]];
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
        int rc = maildir_stage(ctx->batch, path, &s->perms, &head, &m->body, (int)ctx->rcpts[i],
                               ctx->error, sizeof ctx->error);
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
    if (s->perms.file_mode != 0600 || s->perms.dir_mode != 0700)
        buf_printf(out, " mode=%04o dir_mode=%04o", (unsigned)s->perms.file_mode,
                   (unsigned)s->perms.dir_mode);
    if (s->group)
        buf_printf(out, " group=%s", s->group);
}

static void store_free(void *state)
{
    struct store_state *s = state;
    if (!s)
        return;
    free(s->maildir);
    free(s->group);
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
