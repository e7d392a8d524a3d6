/* The rule evaluator loop. Per rule: pick the recipients it matches, count Received, run its
 * actions in order, count PublishSuccess/PublishFailure. */
#include "rules/eval.h"
#include "actions/action.h"
#include "delivery/maildir.h"
#include "config/config.h"
#include "core/log.h"
#include "core/log.h"
#include "core/message.h"
#include "spool/spool.h"
#include "core/xalloc.h"
#include "rules/metrics.h"
#include "rules/rcpt_index.h"
#include "rules/ruleset.h"

#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* (rule position, recipient) pairs from the recipient index, sorted by rule then recipient,
 * so the chain visits only rules that match someone, in order. */
struct hit {
    uint32_t rule;
    uint32_t rcpt;
};

static int cmp_hit(const void *a, const void *b)
{
    const struct hit *x = a, *y = b;
    if (x->rule != y->rule)
        return x->rule < y->rule ? -1 : 1;
    return x->rcpt < y->rcpt ? -1 : x->rcpt > y->rcpt;
}

static struct hit *collect_hits(const struct rule_set *rs, const struct message *m, size_t *nhits)
{
    struct hit *hits = NULL;
    size_t n = 0, cap = 0, lcap = 0;
    uint32_t *list = NULL;
    for (size_t i = 0; i < m->nrcpts; i++) {
        size_t k = rcpt_index_lookup(rs->index, m->rcpts[i], &list, &lcap);
        hits = xgrow(hits, sizeof *hits, &cap, n + k);
        for (size_t j = 0; j < k; j++)
            hits[n++] = (struct hit){list[j], (uint32_t)i};
    }
    free(list);
    if (n > 1)
        qsort(hits, n, sizeof *hits, cmp_hit);
    *nhits = n;
    return hits;
}

static void fail_reply(struct eval_result *res, int sys_errno)
{
    if (sys_errno == ENOSPC || sys_errno == EDQUOT)
        snprintf(res->reply, sizeof res->reply,
                 "452 4.3.1 Insufficient system storage, try again later");
    else
        snprintf(res->reply, sizeof res->reply,
                 "451 4.3.0 Temporary failure storing the message, try again later");
}

/* Per-recipient arrays that grow when a rule replaces recipients. */
struct eval_state {
    size_t *idx;
    struct rcpt_outcome *outcomes;
    size_t cap;
    int rehit;     /* recipients changed: find the rules for the new ones */
    int committed; /* a copy went where it cannot be taken back (an LMTP server) */
};

/* A post-acceptance action with on_failure = "tempfail" runs now, before the reply, on a job
 * built from the message in memory. */
static enum action_status deliver_now(const struct rule_set *rs, const struct action *a, size_t ai,
                                      struct action_ctx *ctx)
{
    struct spool_job *j = spool_job_new(ctx->msg, rs->name, ctx->rule->name, (int)ai, a->type->name,
                                        ctx->rcpts, ctx->nrcpts, 0);
    message_trace_headers(ctx->msg, NULL, &j->content);
    buf_append(&j->content, ctx->msg->body.data, ctx->msg->body.len);
    char err[512] = "";
    int rc = a->type->deliver(a->state, j, err, sizeof err);
    spool_job_free(j);
    if (rc == 0)
        return ACTION_OK;
    snprintf(ctx->error, sizeof ctx->error, "%.250s", err);
    return ACTION_FAILED;
}

static void defer(struct eval_result *res, const struct rule_set *rs, const struct action *a,
                  size_t ai, struct action_ctx *ctx);

/* An action that answers per recipient (LMTP) in the session: a 2xx is delivered and cannot be
 * taken back, a 5xx refuses that recipient (in the session when it is the only one, else in a
 * DSN), a 4xx fails the message with 451 unless some copy is already delivered or staged, in
 * which case the message is accepted and those recipients go to the spool: the sender's retry
 * would otherwise put a second copy into the mailboxes that have one. */
static enum action_status deliver_each_now(const struct rule_set *rs, const struct action *a,
                                           size_t ai, struct action_ctx *ctx,
                                           struct eval_result *res)
{
    size_t n = ctx->nrcpts;
    struct spool_job *j = spool_job_new(ctx->msg, rs->name, ctx->rule->name, (int)ai, a->type->name,
                                        ctx->rcpts, n, 0);
    message_trace_headers(ctx->msg, NULL, &j->content);
    buf_append(&j->content, ctx->msg->body.data, ctx->msg->body.len);
    struct rcpt_reply *rep = xcalloc(n, sizeof *rep);
    char err[512] = "";
    a->type->deliver_each(a->state, j, rep, err, sizeof err);
    spool_job_free(j);
    size_t *temp = xcalloc(n, sizeof *temp), ntemp = 0;
    const char *first_temp = NULL;
    for (size_t i = 0; i < n; i++) {
        size_t r = ctx->rcpts[i];
        const char *addr = ctx->msg->rcpts[r];
        int cls = rep[i].code / 100;
        if (cls == 2) {
            ctx->eval->committed = 1;
            action_note(ctx, "%s delivered: %s", addr, rep[i].text);
        } else if (cls == 5) {
            action_refuse_rcpt(ctx, r, rep[i].text, NULL);
        } else {
            temp[ntemp++] = r;
            if (!first_temp)
                first_temp = rep[i].text;
            action_note(ctx, "%s not delivered: %s", addr, rep[i].text);
        }
    }
    enum action_status st = ACTION_OK;
    if (ntemp > 0 && (ctx->eval->committed || ctx->batch->n > 0) && !res->deliver_inline) {
        const size_t *all = ctx->rcpts;
        ctx->rcpts = temp;
        ctx->nrcpts = ntemp;
        defer(res, rs, a, ai, ctx);
        ctx->rcpts = all;
        ctx->nrcpts = n;
        log_msg(LOG_WARN,
                "qid=%s rule %s: %s (line %d): %zu recipient(s) not delivered (%s); other copies "
                "are delivered, so these go to the spool and are retried",
                ctx->msg->qid, ctx->rule->name, a->type->name, a->line, ntemp,
                err[0] ? err : first_temp);
    } else if (ntemp > 0) {
        snprintf(ctx->error, sizeof ctx->error, "%.250s", err[0] ? err : first_temp);
        st = ACTION_FAILED;
    }
    free(temp);
    free(rep);
    return st;
}

/* Remembers a post-acceptance action to spool once the chain has succeeded. */
static void defer(struct eval_result *res, const struct rule_set *rs, const struct action *a,
                  size_t ai, struct action_ctx *ctx)
{
    struct spool_job *j = spool_job_new(ctx->msg, rs->name, ctx->rule->name, (int)ai, a->type->name,
                                        ctx->rcpts, ctx->nrcpts, (int)res->njobs + 1);
    j->expire_after_ms = a->expire_after_ms;
    j->on_failure =
        action_effective_policy(a) == ON_FAILURE_CONTINUE ? ON_FAILURE_CONTINUE : ON_FAILURE_RETRY;
    res->jobs = xgrow(res->jobs, sizeof *res->jobs, &res->jobs_cap, res->njobs);
    res->jobs[res->njobs++] = j;
}

/* `sluice test`: what a post-acceptance action would send. */
static void explain_delivery(const struct rule_set *rs, const struct action *a, size_t ai,
                             struct action_ctx *ctx)
{
    struct spool_job *j = spool_job_new(ctx->msg, rs->name, ctx->rule->name, (int)ai, a->type->name,
                                        ctx->rcpts, ctx->nrcpts, 1);
    message_trace_headers(ctx->msg, NULL, &j->content);
    buf_append(&j->content, ctx->msg->body.data, ctx->msg->body.len);
    struct buf out = {0};
    if (a->type->explain)
        a->type->explain(a->state, j, &out);
    int in_session = a->type->deliver_each && action_effective_policy(a) == ON_FAILURE_TEMPFAIL;
    for (size_t i = 0; i < j->nrcpts; i++)
        action_note(ctx, "%s, for %s", in_session ? "in the session" : "after acceptance",
                    j->rcpts[i]);
    if (out.len)
        action_note(ctx, "%s", buf_cstr(&out));
    buf_free(&out);
    spool_job_free(j);
}

static enum action_status run_action(const struct rule_set *rs, const struct action *a, size_t ai,
                                     struct action_ctx *ctx, struct eval_result *res)
{
    if (!a->type->deliver)
        return a->type->run(a->state, ctx);
    if (ctx->dry_run) {
        explain_delivery(rs, a, ai, ctx);
        return ACTION_OK;
    }
    if (a->type->deliver_each && action_effective_policy(a) == ON_FAILURE_TEMPFAIL)
        return deliver_each_now(rs, a, ai, ctx, res);
    if (action_effective_policy(a) == ON_FAILURE_TEMPFAIL || res->deliver_inline)
        return deliver_now(rs, a, ai, ctx);
    defer(res, rs, a, ai, ctx);
    return ACTION_OK;
}

/* Runs one rule's actions for the recipients in ctx. Returns the status that ends the rule
 * (OK when all ran), with failures described in res->error. A failed action whose policy is
 * "continue" or "drop" does not fail the message. */
static enum action_status run_rule(const struct rule_set *rs, const struct rule *r,
                                   struct action_ctx *ctx, struct eval_result *res,
                                   json_t *trace_actions)
{
    int rule_failed = 0;
    for (size_t ai = 0; ai < r->nactions && ctx->nrcpts > 0; ai++) {
        const struct action *a = r->actions[ai];
        ctx->error[0] = '\0';
        json_t *entry = NULL;
        if (trace_actions) {
            struct buf d = {0};
            if (a->type->describe)
                a->type->describe(a->state, &d);
            entry = json_pack("{s:s, s:i, s:s, s:[]}", "action", a->type->name, "line", a->line,
                              "params", buf_cstr(&d), "detail");
            buf_free(&d);
            json_array_append_new(trace_actions, entry);
            ctx->detail = json_object_get(entry, "detail");
        }
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        enum action_status st = run_action(rs, a, ai, ctx, res);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        metrics_action_observe(a->stats, secs, st == ACTION_FAILED);
        static const char *const outcome[] = {"ok", "failed", "stop_rule", "stop_rule_set"};
        buf_printf(&res->actions, "%s%s/%s:%s:%.3fms", res->actions.len ? "," : "", r->name,
                   a->type->name, outcome[st], secs * 1e3);
        if (entry) {
            json_object_set_new(entry, "result", json_string(outcome[st]));
            if (st == ACTION_FAILED)
                json_object_set_new(entry, "error", json_string(ctx->error));
        }
        if (st == ACTION_FAILED) {
            snprintf(res->error, sizeof res->error, "rule %.64s: %s (line %d): %.250s", r->name,
                     a->type->name, a->line, ctx->error);
            enum on_failure policy = action_effective_policy(a);
            if (policy == ON_FAILURE_CONTINUE || policy == ON_FAILURE_DROP) {
                log_msg(LOG_WARN, "qid=%s %s; on_failure=%s", ctx->msg->qid, res->error,
                        policy == ON_FAILURE_DROP ? "drop" : "continue");
                if (policy == ON_FAILURE_DROP)
                    action_drop_rcpts(ctx);
                res->error[0] = '\0';
                rule_failed = 1;
                /* Not `continue`: the dropped recipients must leave ctx below, so that no
                 * later action of this rule runs for them. */
                st = ACTION_OK;
            }
        }
        if (st != ACTION_OK)
            return st;
        /* A recipient refused or dropped by this action (a bounce, a script's bounce) gets
         * nothing from the rule's later actions (ctx->rcpts is the evaluator's idx array). */
        size_t *idx = ctx->eval->idx, k = 0;
        for (size_t i = 0; i < ctx->nrcpts; i++)
            if (!ctx->outcomes[idx[i]].refused && !ctx->outcomes[idx[i]].dropped)
                idx[k++] = idx[i];
        ctx->nrcpts = k;
    }
    return rule_failed ? ACTION_FAILED_SOFT : ACTION_OK;
}

/* The reply to DATA once the chain ran: when every recipient was refused, the first refusal
 * is the reply (no DSN, no backscatter); otherwise the message is accepted. */
static void final_reply(const struct message *m, const struct rcpt_outcome *out,
                        struct eval_result *res)
{
    size_t refused = 0;
    const char *first = NULL;
    for (size_t i = 0; i < m->nrcpts; i++) {
        if (out[i].refused) {
            refused++;
            if (!first)
                first = out[i].reply;
        }
    }
    res->refused = refused;
    if (refused > 0 && refused == m->nrcpts)
        snprintf(res->reply, sizeof res->reply, "%s", first);
    else
        snprintf(res->reply, sizeof res->reply, "250 2.0.0 Ok: queued as %s", m->qid);
}

static void unspool_jobs(const char *data_dir, struct eval_result *res);

static void drop_jobs(struct eval_result *res)
{
    for (size_t i = 0; i < res->njobs; i++)
        spool_job_free(res->jobs[i]);
    res->njobs = 0;
}

/* Makes the deferred jobs durable: the message file, then each job file. */
static int spool_jobs(const char *data_dir, const struct message *m, struct eval_result *res)
{
    if (res->njobs == 0)
        return 0;
    struct buf content = {0};
    char path[4096];
    int rc = spool_write_message(data_dir, m, &content, path, sizeof path, res->error,
                                 sizeof res->error);
    for (size_t i = 0; rc == 0 && i < res->njobs; i++) {
        struct spool_job *j = res->jobs[i];
        free(j->msg_path);
        j->msg_path = xstrdup(path);
        buf_reset(&j->content);
        buf_append(&j->content, content.data, content.len);
        rc = spool_write_job(data_dir, j, res->error, sizeof res->error);
    }
    buf_free(&content);
    if (rc < 0)
        unspool_jobs(data_dir, res);
    return rc;
}

static void unspool_jobs(const char *data_dir, struct eval_result *res)
{
    for (size_t i = 0; i < res->njobs; i++)
        spool_remove_job(data_dir, res->jobs[i], i + 1 == res->njobs);
}

/* Some recipients were refused after others were accepted: the refusal can only reach the
 * sender as a DSN. One is queued only for an authenticated, non-null sender (no backscatter to
 * forged addresses), through bounce_relay or else the sender domain's MX; res->dsn says what
 * happened. */
static void plan_dsn(const struct rule_set *rs, const struct server_cfg *sc,
                     const struct message *m, const struct rcpt_outcome *out,
                     struct eval_result *res)
{
    const struct verdicts *v = &m->verdicts;
    if (!m->mail_from || !m->mail_from[0]) {
        res->dsn = "not sent: null sender";
        return;
    }
    if (v->spf != VERDICT_PASS && !(v->dkim == VERDICT_PASS && v->dmarc == VERDICT_PASS)) {
        res->dsn = "not sent: sender not authenticated (no SPF pass, no aligned DKIM pass)";
        return;
    }
    struct spool_job *j = spool_job_new(m, rs->name, "-", -1, "dsn", NULL, 0, (int)res->njobs + 1);
    struct buf report = {0};
    const char *from = NULL;
    for (size_t i = 0; i < m->nrcpts; i++) {
        if (!out[i].refused)
            continue;
        char status[16] = "5.0.0";
        sscanf(out[i].reply, "%*s %15s", status);
        buf_printf(&report,
                   "\nFinal-Recipient: rfc822; %s\nAction: failed\nStatus: %s\n"
                   "Diagnostic-Code: smtp; %s\n",
                   m->rcpts[i], status, out[i].reply);
        if (!from && out[i].sender[0])
            from = out[i].sender;
    }
    j->dsn_report = xstrdup(buf_cstr(&report));
    buf_free(&report);
    j->dsn_from = from ? xstrdup(from) : xasprintf("MAILER-DAEMON@%s", sc->hostname);
    j->dsn_relay = xstrdup(sc->bounce_relay ? sc->bounce_relay : ""); /* "": the sender's MX */
    j->hostname = xstrdup(sc->hostname);
    j->expire_after_ms = 5LL * 24 * 3600 * 1000; /* RFC 5321 4.5.4.1: give up after days */
    j->on_failure = ON_FAILURE_RETRY;
    res->jobs = xgrow(res->jobs, sizeof *res->jobs, &res->jobs_cap, res->njobs);
    res->jobs[res->njobs++] = j;
    res->dsn = "queued";
}

static void grow_state(struct eval_state *st, size_t need)
{
    if (need <= st->cap)
        return;
    size_t ncap = st->cap ? st->cap : 4;
    while (ncap < need)
        ncap *= 2;
    st->idx = xrealloc(st->idx, ncap * sizeof *st->idx);
    st->outcomes = xrealloc(st->outcomes, ncap * sizeof *st->outcomes);
    memset(st->outcomes + st->cap, 0, (ncap - st->cap) * sizeof *st->outcomes);
    st->cap = ncap;
}

void action_replace_rcpts(struct action_ctx *ctx, char *const *addrs, size_t n)
{
    struct eval_state *st = ctx->eval;
    struct message *m = ctx->msg;
    for (size_t i = 0; i < ctx->nrcpts; i++) {
        st->outcomes[ctx->rcpts[i]].dropped = 1;
        maildir_discard_tag(ctx->batch, (int)ctx->rcpts[i]);
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        size_t at = m->nrcpts;
        for (size_t j = 0; j < m->nrcpts; j++)
            if (strcasecmp(m->rcpts[j], addrs[i]) == 0)
                at = j;
        if (at == m->nrcpts) {
            message_add_rcpt(m, addrs[i]);
            grow_state(st, m->nrcpts);
        }
        st->outcomes[at].dropped = 0;
        st->outcomes[at].refused = 0;
        st->idx[k++] = at;
    }
    ctx->rcpts = st->idx;
    ctx->nrcpts = k;
    ctx->outcomes = st->outcomes;
    st->rehit = 1;
}

static const char *cond_reason(char *out, size_t len, const char *list, const struct condition *c,
                               const char *what)
{
    if (c->field == COND_HEADER)
        snprintf(out, len, "%s.header[\"%s\"] %s", list, c->header, what);
    else
        snprintf(out, len, "%s.%s %s", list, cond_field_name(c->field), what);
    return out;
}

static json_t *trace_skeleton(const struct rule_set *rs)
{
    json_t *t = json_array();
    for (size_t i = 0; i < rs->nrules; i++)
        json_array_append_new(t, json_pack("{s:s, s:i, s:b, s:s, s:[]}", "rule", rs->rules[i]->name,
                                           "line", rs->rules[i]->line, "applied", 0, "reason",
                                           "no recipient matches", "actions"));
    return t;
}

void rules_evaluate(const struct rule_set *rs, struct message *m, const struct server_cfg *sc,
                    struct eval_result *res)
{
    rules_evaluate_opts(rs, m, sc, NULL, res);
}

void rules_evaluate_opts(const struct rule_set *rs, struct message *m, const struct server_cfg *sc,
                         const struct eval_opts *opts, struct eval_result *res)
{
    memset(res, 0, sizeof *res);
    if (opts) {
        res->dry_run = opts->dry_run;
        res->deliver_inline = opts->deliver_inline;
        if (opts->trace)
            res->trace = trace_skeleton(rs);
    }
    struct maildir_batch batch = {0};
    struct eval_state st = {0};
    grow_state(&st, m->nrcpts ? m->nrcpts : 1);
    int failed = 0;
    size_t nhits;
    struct hit *hits = collect_hits(rs, m, &nhits);

    atomic_fetch_add(&rs->stats->received, 1);
    for (size_t h = 0; h < nhits && !failed;) {
        const struct rule *r = rs->rules[hits[h].rule];
        uint32_t rule_pos = hits[h].rule;
        size_t n = 0;
        for (; h < nhits && hits[h].rule == rule_pos; h++)
            if (!st.outcomes[hits[h].rcpt].refused && !st.outcomes[hits[h].rcpt].dropped)
                st.idx[n++] = hits[h].rcpt;
        const char *why = NULL;
        const struct condition *cond = NULL;
        char reason[200];
        if (n == 0)
            why = "its recipients were refused, dropped or replaced earlier";
        else if (!r->enabled)
            why = "disabled";
        else if (r->tls == TLS_REQUIRE && !m->tls)
            why = "requires TLS";
        else if (!cond_list_all(&r->when, m, &cond))
            why = cond_reason(reason, sizeof reason, "when", cond, "does not hold");
        else if (cond_list_any(&r->unless, m, &cond))
            why = cond_reason(reason, sizeof reason, "unless", cond, "holds");
        if (why) {
            if (res->trace)
                json_object_set_new(json_array_get(res->trace, rule_pos), "reason",
                                    json_string(why));
            continue;
        }
        atomic_fetch_add(&r->stats->received, 1);
        if (res->rules.len)
            buf_puts(&res->rules, ",");
        buf_puts(&res->rules, r->name);

        struct action_ctx ctx = {.msg = m,
                                 .rule = r,
                                 .rcpts = st.idx,
                                 .nrcpts = n,
                                 .batch = &batch,
                                 .outcomes = st.outcomes,
                                 .eval = &st,
                                 .dry_run = res->dry_run};
        json_t *trace_actions = NULL;
        if (res->trace) {
            json_t *t = json_array_get(res->trace, rule_pos);
            json_object_set_new(t, "applied", json_true());
            json_object_set_new(t, "reason", json_string("applies"));
            json_t *rc = json_array();
            for (size_t i = 0; i < n; i++)
                json_array_append_new(rc, json_string(m->rcpts[st.idx[i]]));
            json_object_set_new(t, "recipients", rc);
            trace_actions = json_object_get(t, "actions");
        }
        enum action_status status = run_rule(rs, r, &ctx, res, trace_actions);
        failed = status == ACTION_FAILED;
        if (failed)
            res->sys_errno = ctx.sys_errno;
        atomic_fetch_add(failed || status == ACTION_FAILED_SOFT ? &r->stats->publish_failure
                                                                : &r->stats->publish_success,
                         1);
        if (status == ACTION_STOP_RULE_SET) {
            for (; res->trace && h < nhits; h++)
                json_object_set_new(json_array_get(res->trace, hits[h].rule), "reason",
                                    json_string("not reached: the chain was stopped"));
            break;
        }
        if (st.rehit) {
            /* New recipients: the rules after this one are looked up again. */
            free(hits);
            hits = collect_hits(rs, m, &nhits);
            for (h = 0; h < nhits && hits[h].rule <= rule_pos; h++)
                ;
            st.rehit = 0;
        }
    }
    free(st.idx);
    free(hits);
    struct rcpt_outcome *outcomes = st.outcomes;

    if (!failed) {
        final_reply(m, outcomes, res);
        if (res->refused && res->reply[0] == '2')
            plan_dsn(rs, sc, m, outcomes, res);
        /* A total refusal delivers nothing; otherwise commit what was staged. */
        if (res->reply[0] != '2') {
            maildir_abort(&batch);
            drop_jobs(res);
        }
        int rc = spool_jobs(sc->data_dir, m, res);
        if (rc == 0) {
            rc = maildir_commit(&batch, res->error, sizeof res->error);
            if (rc < 0)
                unspool_jobs(sc->data_dir, res);
        }
        if (rc < 0) {
            failed = 1;
            res->sys_errno = -rc;
        }
    }
    if (failed)
        drop_jobs(res);
    if (failed) {
        if (st.committed)
            log_msg(LOG_WARN,
                    "qid=%s copies were already delivered over LMTP before the failure: the "
                    "sender's retry will deliver them again",
                    m->qid);
        maildir_abort(&batch);
        fail_reply(res, res->sys_errno);
        res->refused = 0;
        atomic_fetch_add(&rs->stats->publish_failure, 1);
    } else {
        atomic_fetch_add(&rs->stats->publish_success, 1);
    }
    res->outcomes = outcomes;
    maildir_batch_free(&batch);
}

void eval_result_free(struct eval_result *res)
{
    buf_free(&res->rules);
    buf_free(&res->actions);
    json_decref(res->trace);
    res->trace = NULL;
    drop_jobs(res);
    free(res->jobs);
    free(res->outcomes);
    res->outcomes = NULL;
}
