/* The message job (see message_job.h): judge, evaluate, commit on a worker; log, schedule and
 * reply on the event loop. */
#include "pipeline/message_job.h"
#include "actions/action.h"
#include "auth/auth.h"
#include "auth/dns.h"
#include "config/config.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/headers.h"
#include "core/message.h"
#include "core/verdict.h"
#include "core/workers.h"
#include "core/xalloc.h"
#include "delivery/commit.h"
#include "pipeline/retry.h"
#include "pipeline/verdict_stats.h"
#include "reports/dmarc_store.h"
#include "spool/spool.h"
#include "rules/eval.h"
#include "scan/scan.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

struct message_job {
    struct work work; /* first: the pool hands back a struct work * */
    struct message *msg;
    struct config *cfg;
    const struct rule_set *rs;
    struct retry *retry;
    struct plan res;
    message_job_done_fn done;
    void *arg;
};

/* A verdict for the log line, or NULL (left out) when it was not computed. */
static const char *logged_verdict(enum verdict v)
{
    return v == VERDICT_UNSET ? NULL : verdict_name(v);
}

/* Message-ID is client text of any length and content: only printable ASCII is kept (the rest
 * becomes '?') and at most MSGID_LOG_MAX bytes of it, so that the line stays one bounded line. */
#define MSGID_LOG_MAX 250

static void message_id(const struct message *m, char *out, size_t outlen)
{
    out[0] = '\0';
    struct buf v = {0};
    if (!m->body.len ||
        !header_find((const char *)m->body.data, m->body.len, "Message-ID", 0, &v)) {
        buf_free(&v);
        return;
    }
    const unsigned char *p = (const unsigned char *)buf_cstr(&v);
    size_t n = 0, limit = outlen - 1 < MSGID_LOG_MAX ? outlen - 1 : MSGID_LOG_MAX;
    for (; *p && n < limit; p++)
        out[n++] = *p >= 0x20 && *p < 0x7f ? (char)*p : '?';
    out[n] = '\0';
    if (*p && n >= 3)
        memcpy(out + n - 3, "...", 3); /* cut: say so */
    buf_free(&v);
}

/* "rcpt:job id" for each recipient of each spooled job; items and their strings go to out
 * (free with free_items). */
static size_t job_items(const struct plan *p, char ***out)
{
    size_t n = 0, cap = 0;
    char **v = NULL;
    for (size_t i = 0; i < p->njobs; i++) {
        for (size_t r = 0; r < p->jobs[i]->env.nrcpts; r++) {
            if (n == cap) {
                cap = cap ? cap * 2 : 4;
                v = xrealloc(v, cap * sizeof *v);
            }
            struct buf b = {0};
            buf_printf(&b, "%s:%s", p->jobs[i]->env.rcpts[r], p->jobs[i]->id);
            v[n++] = xstrdup(buf_cstr(&b));
            buf_free(&b);
        }
    }
    *out = v;
    return n;
}

static void free_items(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void message_log(const struct message *m, const char *client, const char *helo, const char *result,
                 struct plan *p, const char *undelivered, const char *error)
{
    if (!log_enabled(LOG_INFO))
        return;
    const struct verdicts *v = &m->env.verdicts;
    char msgid[MSGID_LOG_MAX + 1];
    message_id(m, msgid, sizeof msgid);
    /* What was kept: only a committed message has copies and jobs. */
    int kept = p && !p->failed && result && result[0] == '2';
    char **jobs = NULL;
    size_t njobs = kept ? job_items(p, &jobs) : 0;
    size_t nstored = kept ? p->nstored : 0;
    struct log_field f[] = {
        LOG_STR("qid", m->env.qid),
        LOG_STR("client", client),
        LOG_STR("helo", helo),
        LOG_STR("from", m->env.mail_from),
        LOG_LIST("to", m->env.rcpts, m->env.nrcpts),
        LOG_INT("size", m->body.len),
        LOG_CSV("rules", p ? buf_cstr(&p->rules) : NULL),
        LOG_CSV("actions", p ? buf_cstr(&p->actions) : NULL),
        LOG_STR("result", result),
        LOG_CSV("undelivered", undelivered && *undelivered ? undelivered : NULL),
        LOG_STR("error", error && *error ? error : NULL),
        LOG_STR("spf", logged_verdict(v->spf)),
        LOG_STR("dkim", logged_verdict(v->dkim)),
        LOG_STR("dmarc", logged_verdict(v->dmarc)),
        LOG_STR("dmarc_policy", v->dmarc_policy ? dmarc_policy_name(v->dmarc_policy) : NULL),
        LOG_STR("spam", logged_verdict(v->spam)),
        LOG_STR("virus", logged_verdict(v->virus)),
        LOG_STR("virus_name", m->virus_name[0] ? m->virus_name : NULL),
        LOG_STR("session", m->session_id[0] ? m->session_id : NULL),
        LOG_STR("msgid", msgid[0] ? msgid : NULL),
        LOG_LIST_SP_IF("stored", kept ? p->stored : NULL, nstored, nstored > 0),
        LOG_LIST_SP_IF("jobs", jobs, njobs, njobs > 0),
    };
    log_fields(LOG_INFO, "message", f, sizeof f / sizeof f[0]);
    free_items(jobs, njobs);
}

/* Some recipients were refused by rules after others were accepted: the client got 250, so the
 * refusal can only reach the sender as a DSN. Every such case is logged per recipient, and
 * those whose DSN is not sent are counted, so nothing goes unnoticed. */
static unsigned log_partial_bounce(const struct message *m, const struct rcpt_outcome *out,
                                   const char *dsn)
{
    unsigned not_sent = 0;
    for (size_t i = 0; i < m->env.nrcpts; i++) {
        if (!out[i].refused)
            continue;
        const char *why = envelope_rcpt_wants_failure_dsn(&m->env, i)
                              ? dsn
                              : "not sent: the client's NOTIFY excludes FAILURE";
        if (strcmp(why, "queued") != 0)
            not_sent++;
        struct log_kv kv[] = {{"qid", m->env.qid},
                              {"rcpt", m->env.rcpts[i]},
                              {"reply", out[i].reply},
                              {"dsn", why},
                              {"session", m->session_id[0] ? m->session_id : NULL}};
        log_event(LOG_WARN, "bounce", kv, sizeof kv / sizeof kv[0]);
    }
    return not_sent;
}

/* Recipients no delivering action reached: one line each with what the policy did, and their
 * list (comma separated) in out for the message line. */
static void log_undelivered(const struct message *m, const struct plan *p,
                            enum undelivered_policy policy, struct buf *out)
{
    for (size_t i = 0; p->outcomes && i < m->env.nrcpts; i++) {
        if (!p->outcomes[i].undelivered)
            continue;
        buf_printf(out, "%s%s", out->len ? "," : "", m->env.rcpts[i]);
        const char *reply = p->outcomes[i].refused ? p->outcomes[i].reply
                            : p->failed            ? p->reply
                                                   : "accepted, kept nowhere";
        struct log_kv kv[] = {
            {"qid", m->env.qid},       {"rcpt", m->env.rcpts[i]},
            {"result", "undelivered"}, {"policy", undelivered_policy_name(policy)},
            {"reply", reply},          {"session", m->session_id[0] ? m->session_id : NULL}};
        log_event(LOG_WARN, "recipient", kv, sizeof kv / sizeof kv[0]);
    }
}

static void job_run(struct work *w)
{
    struct message_job *j = (struct message_job *)w;
    /* Authentication first: DKIM must see the bytes as received, and rspamd gets the verdicts. */
    if (j->cfg->server.auth_checks)
        auth_check(j->cfg->server.hostname, &j->cfg->dns, j->cfg->dmarc.tree_walk, j->msg);
    scan_message(&j->cfg->scan, j->rs, j->msg);
    verdict_stats_count(&j->msg->env.verdicts);
    dns_begin(&j->cfg->dns); /* a fresh lookup budget for the rules' scripts */
    rules_evaluate(j->rs, j->msg,
                   &(struct rules_settings){j->cfg->server.hostname, j->cfg->server.bounce_relay,
                                            j->cfg->server.undelivered},
                   &j->res);
    delivery_commit(&j->res, j->msg, j->cfg->server.data_dir);
    rules_count_kept(&j->res);
    /* For DMARC aggregate reports, with what the rules did to the message. */
    dmarc_store_record(j->cfg, j->msg, j->res.reply, j->res.refused, time(NULL));
}

static void job_done(struct work *w)
{
    struct message_job *j = (struct message_job *)w;
    struct message_job_result r = {.reply = j->res.reply};
    struct buf undelivered = {0};
    log_undelivered(j->msg, &j->res, j->cfg->server.undelivered, &undelivered);
    message_log(j->msg, j->msg->env.client_ip, j->msg->env.helo, j->res.reply, &j->res,
                buf_cstr(&undelivered), j->res.error);
    buf_free(&undelivered);
    if (j->res.refused && j->res.reply[0] == '2')
        r.dsn_not_sent =
            log_partial_bounce(j->msg, j->res.outcomes, j->res.dsn ? j->res.dsn : "not sent");
    if (j->res.njobs) {
        /* Durable already; the first attempt starts now, with the reply. */
        retry_add(j->retry, j->res.jobs, j->res.njobs);
        j->res.njobs = 0;
    }
    if (j->res.error[0])
        log_msg_with(LOG_ERR, "session", j->msg->session_id[0] ? j->msg->session_id : NULL,
                     "qid=%s %s", j->msg->env.qid, j->res.error);
    j->done(j->arg, &r);
    message_free(j->msg);
    config_release(j->cfg);
    plan_free(&j->res);
    free(j);
}

void message_job_submit(struct worker_pool *pool, struct retry *retry, struct message *m,
                        struct config *cfg, const struct rule_set *rs, message_job_done_fn done,
                        void *arg)
{
    struct message_job *j = xcalloc(1, sizeof *j);
    j->work.run = job_run;
    j->work.done = job_done;
    j->msg = m;
    j->cfg = cfg;
    j->rs = rs;
    j->retry = retry;
    j->done = done;
    j->arg = arg;
    worker_pool_submit(pool, &j->work);
}
