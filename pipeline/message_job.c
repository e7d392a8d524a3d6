/* The message job (see message_job.h): judge, evaluate, commit on a worker; log, schedule and
 * reply on the event loop. */
#include "pipeline/message_job.h"
#include "actions/action.h"
#include "auth/auth.h"
#include "auth/dns.h"
#include "config/config.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/message.h"
#include "core/verdict.h"
#include "core/workers.h"
#include "core/xalloc.h"
#include "delivery/commit.h"
#include "pipeline/retry.h"
#include "pipeline/verdict_stats.h"
#include "reports/dmarc_store.h"
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

void message_log(const struct message *m, const char *client, const char *helo, const char *result,
                 const char *rules, const char *actions, const char *undelivered, const char *error)
{
    const struct verdicts *v = &m->env.verdicts;
    struct buf rcpts = {0};
    for (size_t i = 0; i < m->env.nrcpts; i++) {
        if (i)
            buf_puts(&rcpts, ",");
        buf_puts(&rcpts, m->env.rcpts[i]);
    }
    char size[24];
    snprintf(size, sizeof size, "%zu", m->body.len);
    struct log_kv kv[] = {
        {"qid", m->env.qid},
        {"client", client},
        {"helo", helo},
        {"from", m->env.mail_from},
        {"to", buf_cstr(&rcpts)},
        {"size", size},
        {"rules", rules},
        {"actions", actions},
        {"result", result},
        {"undelivered", undelivered && *undelivered ? undelivered : NULL},
        {"error", error && *error ? error : NULL},
        {"spf", logged_verdict(v->spf)},
        {"dkim", logged_verdict(v->dkim)},
        {"dmarc", logged_verdict(v->dmarc)},
        {"dmarc_policy", v->dmarc_policy ? dmarc_policy_name(v->dmarc_policy) : NULL},
        {"spam", logged_verdict(v->spam)},
        {"virus", logged_verdict(v->virus)},
        {"virus_name", m->virus_name[0] ? m->virus_name : NULL},
    };
    log_event(LOG_INFO, "message", kv, sizeof kv / sizeof kv[0]);
    buf_free(&rcpts);
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
        struct log_kv kv[] = {
            {"qid", m->env.qid}, {"rcpt", m->env.rcpts[i]}, {"reply", out[i].reply}, {"dsn", why}};
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
        struct log_kv kv[] = {{"qid", m->env.qid},
                              {"rcpt", m->env.rcpts[i]},
                              {"result", "undelivered"},
                              {"policy", undelivered_policy_name(policy)},
                              {"reply", reply}};
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
    message_log(j->msg, j->msg->env.client_ip, j->msg->env.helo, j->res.reply,
                buf_cstr(&j->res.rules), buf_cstr(&j->res.actions), buf_cstr(&undelivered),
                j->res.error);
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
        log_msg(LOG_ERR, "qid=%s %s", j->msg->env.qid, j->res.error);
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
