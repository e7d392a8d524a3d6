/* lmtp { socket = "/run/dovecot/lmtp" | address = "ip:port", rcpt = "{address}",
 *        timeout = 30, lhlo = "name" }: final delivery into a mail store (Dovecot, Cyrus, ...)
 * over LMTP, one transaction for the rule's recipients, each with its own answer.
 *
 * In the session (on_failure = "tempfail", the default) the evaluator calls deliver_each and
 * judges each recipient's answer; from the spool (on_failure = "retry", or what is left after
 * some copies were delivered) deliver runs, drops the recipients that are done from the job,
 * and asks for a retry of the rest: a mailbox never gets the same message twice from us. */
#include "actions/action.h"
#include "delivery/lmtp_client.h"
#include "actions/path_template.h"
#include "delivery/smtp_client.h"
#include "lua/lua_fields.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "spool/spool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

struct lmtp_state {
    char *rcpt; /* address template */
    long long timeout_ms;
    struct lmtp_pool *pool; /* shared by the worker threads; lives as long as the config */
};

static int lmtp_parse(struct lua_State *L, int idx, void **state, char *err, size_t errlen)
{
    static const char *const keys[] = {"socket", "address", "rcpt", "timeout", "lhlo", NULL};
    struct lmtp_state *s = xcalloc(1, sizeof *s);
    *state = s;
    char *sock = NULL, *addr = NULL, *lhlo = NULL;
    long long timeout = 30;
    int rc = -1;
    if (lf_check_keys(L, idx, "lmtp", keys, err, errlen) < 0 ||
        lf_string(L, idx, "socket", false, &sock, err, errlen) < 0 ||
        lf_string(L, idx, "address", false, &addr, err, errlen) < 0 ||
        lf_string(L, idx, "rcpt", false, &s->rcpt, err, errlen) < 0 ||
        lf_string(L, idx, "lhlo", false, &lhlo, err, errlen) < 0 ||
        lf_integer(L, idx, "timeout", 1, 3600, &timeout, err, errlen) < 0)
        goto done;
    if (!sock == !addr) {
        snprintf(err, errlen,
                 "lmtp: give exactly one of socket = \"/path\" or address = "
                 "\"ip:port\"");
        goto done;
    }
    if (!s->rcpt)
        s->rcpt = xstrdup("{address}");
    char probe[512];
    if (path_template_check(s->rcpt, err, errlen) < 0)
        goto done;
    /* A template that cannot give an address for a plain recipient is a config mistake. */
    if (address_template_expand(s->rcpt, "user@example.com", "rule", probe, sizeof probe, err,
                                errlen) < 0) {
        char why[256];
        snprintf(why, sizeof why, "%s", err);
        snprintf(err, errlen, "lmtp: rcpt: %s", why);
        goto done;
    }
    s->timeout_ms = timeout * 1000;
    char host[256] = "localhost";
    if (!lhlo) {
        gethostname(host, sizeof host - 1);
        host[sizeof host - 1] = '\0';
    }
    char perr[200];
    s->pool = lmtp_pool_new(sock, addr, lhlo ? lhlo : host, perr, sizeof perr);
    if (!s->pool) {
        snprintf(err, errlen, "lmtp: %s", perr);
        goto done;
    }
    rc = 0;
done:
    free(sock);
    free(addr);
    free(lhlo);
    return rc;
}

static const char *lmtp_check_rcpt(const void *state, const char *rule, const char *rcpt)
{
    const struct lmtp_state *s = state;
    char out[512], err[256];
    if (address_template_expand(s->rcpt, rcpt, rule, out, sizeof out, err, sizeof err) < 0)
        return "550 5.1.3 Recipient address cannot be delivered (unusable address)";
    return NULL;
}

/* Several envelope recipients may map to one LMTP address (rcpt = "archive@..."): each
 * address goes out once and its answer serves them all. */
static void lmtp_deliver_each(const void *state, struct spool_job *job, struct rcpt_reply *replies,
                              char *err, size_t errlen)
{
    const struct lmtp_state *s = state;
    char **addrs = xcalloc(job->env.nrcpts ? job->env.nrcpts : 1, sizeof *addrs);
    size_t *slot = xcalloc(job->env.nrcpts ? job->env.nrcpts : 1, sizeof *slot);
    size_t naddrs = 0;
    for (size_t i = 0; i < job->env.nrcpts; i++) {
        char out[512], why[256];
        slot[i] = (size_t)-1;
        if (address_template_expand(s->rcpt, job->env.rcpts[i], job->rule, out, sizeof out, why,
                                    sizeof why) < 0) {
            replies[i].code = 550;
            snprintf(replies[i].text, sizeof replies[i].text, "550 5.1.3 %.200s", why);
            continue;
        }
        size_t j = 0;
        while (j < naddrs && strcasecmp(addrs[j], out) != 0)
            j++;
        if (j == naddrs)
            addrs[naddrs++] = xstrdup(out);
        slot[i] = j;
    }
    struct rcpt_reply *got = xcalloc(naddrs ? naddrs : 1, sizeof *got);
    err[0] = '\0';
    if (naddrs > 0) {
        size_t len = job->content.len;
        const char *data = smtp_skip_return_path(job->content.data, &len);
        lmtp_send(s->pool, job->env.mail_from, addrs, naddrs, data, len, s->timeout_ms, got, err,
                  errlen);
    }
    for (size_t i = 0; i < job->env.nrcpts; i++)
        if (slot[i] != (size_t)-1)
            replies[i] = got[slot[i]];
    for (size_t j = 0; j < naddrs; j++)
        free(addrs[j]);
    free(addrs);
    free(slot);
    free(got);
}

/* From the spool: the recipients delivered or refused for good leave the job; the others stay
 * in it for the next attempt (the retry scheduler rewrites the job file). */
static int lmtp_deliver(const void *state, struct spool_job *job, char *err, size_t errlen)
{
    size_t n = job->env.nrcpts, keep = 0, delivered = 0;
    struct rcpt_reply *replies = xcalloc(n ? n : 1, sizeof *replies);
    char xerr[256];
    lmtp_deliver_each(state, job, replies, xerr, sizeof xerr);
    const char *temp = NULL, *final = NULL;
    bool *retry = xcalloc(n ? n : 1, sizeof *retry);
    for (size_t i = 0; i < n; i++) {
        int cls = replies[i].code / 100;
        if (cls == 4) {
            if (!temp)
                temp = replies[i].text;
            retry[i] = true;
            keep++;
            continue;
        }
        if (cls == 2)
            delivered++;
        else {
            final = final ? final : replies[i].text;
            log_msg(LOG_ERR, "job=%s action=lmtp rcpt=%s refused: %s", job->id, job->env.rcpts[i],
                    replies[i].text);
        }
    }
    envelope_keep_rcpts(&job->env, retry);
    free(retry);
    int rc = 0;
    if (keep > 0) {
        snprintf(err, errlen, "%s", xerr[0] ? xerr : temp);
        rc = -1;
    } else if (delivered == 0 && final) {
        snprintf(err, errlen, "%s", final);
        rc = ACTION_DELIVER_REJECTED;
    }
    free(replies);
    return rc;
}

static void lmtp_explain(const void *state, struct spool_job *job, struct buf *out)
{
    const struct lmtp_state *s = state;
    buf_printf(out, "LMTP %s", lmtp_pool_target(s->pool));
    for (size_t i = 0; i < job->env.nrcpts; i++) {
        char addr[512], why[256];
        if (address_template_expand(s->rcpt, job->env.rcpts[i], job->rule, addr, sizeof addr, why,
                                    sizeof why) < 0)
            buf_printf(out, "; %s: %s", job->env.rcpts[i], why);
        else
            buf_printf(out, "; %s -> RCPT TO:<%s>", job->env.rcpts[i], addr);
    }
}

static void lmtp_describe(const void *state, struct buf *out)
{
    const struct lmtp_state *s = state;
    buf_printf(out, "target=%s rcpt=%s timeout=%llds", lmtp_pool_target(s->pool), s->rcpt,
               s->timeout_ms / 1000);
}

static void lmtp_free(void *state)
{
    struct lmtp_state *s = state;
    if (!s)
        return;
    free(s->rcpt);
    lmtp_pool_free(s->pool);
    free(s);
}

const struct action_type action_lmtp = {
    .name = "lmtp",
    .delivers = true,
    .parse = lmtp_parse,
    .check_rcpt = lmtp_check_rcpt,
    .describe = lmtp_describe,
    .free_state = lmtp_free,
    .deliver = lmtp_deliver,
    .deliver_each = lmtp_deliver_each,
    .explain = lmtp_explain,
    /* Final delivery answers in the session: the sender learns of a full mailbox or an
     * unknown user, and keeps the message while the store is down. */
    .default_on_failure = ON_FAILURE_TEMPFAIL,
};
