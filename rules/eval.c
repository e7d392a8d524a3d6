/* The rule evaluator loop. Per rule: pick the recipients it matches, count Received, run its
 * actions in order, count each action's PublishFailure at the action, rule and rule-set level
 * and keep its PublishSuccess for rules_count_kept (rules/metrics.h); a deferred action's
 * outcome is the retry scheduler's. */
#include "rules/eval.h"
#include "actions/action.h"
#include "core/log.h"
#include "core/message.h"
#include "core/xalloc.h"
#include "delivery/maildir.h"
#include "rules/dsn_plan.h"
#include "rules/metrics.h"
#include "rules/rcpt_index.h"
#include "rules/ruleset.h"
#include "spool/spool.h"

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
    for (size_t i = 0; i < m->env.nrcpts; i++) {
        size_t k = rcpt_index_lookup(rs->index, m->env.rcpts[i], &list, &lcap);
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

/* Per-recipient arrays that grow when a rule replaces recipients. */
struct eval_state {
    size_t *idx;
    struct rcpt_outcome *outcomes;
    size_t cap;
    int rehit; /* recipients changed: find the rules for the new ones */
    struct plan *plan;
    const struct eval_opts *opts;
    int deferred; /* the action just run left work to the spool: its outcome comes later */
};

/* A post-acceptance action with on_failure = "tempfail" runs now, before the reply, on a job
 * built from the message in memory. */
static enum action_status deliver_now(const struct rule_set *rs, const struct action *a, size_t ai,
                                      struct action_ctx *ctx)
{
    struct spool_job *j = spool_job_new(ctx->msg, rs->name, ctx->rule_name, (int)ai, a->type->name,
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

static void defer(struct plan *plan, const struct rule_set *rs, const struct action *a, size_t ai,
                  struct action_ctx *ctx);

/* An action that answers per recipient (LMTP) in the session: a 2xx is delivered and cannot be
 * taken back, a 5xx refuses that recipient (in the session when it is the only one, else in a
 * DSN), a 4xx fails the message with 451 unless some copy is already delivered or staged, in
 * which case the message is accepted and those recipients go to the spool: the sender's retry
 * would otherwise put a second copy into the mailboxes that have one. */
static enum action_status deliver_each_now(const struct rule_set *rs, const struct action *a,
                                           size_t ai, struct action_ctx *ctx)
{
    struct plan *plan = ctx->eval->plan;
    size_t n = ctx->nrcpts;
    struct spool_job *j =
        spool_job_new(ctx->msg, rs->name, ctx->rule_name, (int)ai, a->type->name, ctx->rcpts, n, 0);
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
        const char *addr = ctx->msg->env.rcpts[r];
        int cls = rep[i].code / 100;
        if (cls == 2) {
            plan->irrevocable = 1;
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
    if (ntemp > 0 && (plan->irrevocable || ctx->batch->n > 0) && !ctx->eval->opts->deliver_inline) {
        const size_t *all = ctx->rcpts;
        ctx->rcpts = temp;
        ctx->nrcpts = ntemp;
        defer(plan, rs, a, ai, ctx);
        ctx->rcpts = all;
        ctx->nrcpts = n;
        log_msg(LOG_WARN,
                "qid=%s rule %s: %s (line %d): %zu recipient(s) not delivered (%s); other copies "
                "are delivered, so these go to the spool and are retried",
                ctx->msg->env.qid, ctx->rule_name, a->type->name, a->line, ntemp,
                err[0] ? err : first_temp);
    } else if (ntemp > 0) {
        snprintf(ctx->error, sizeof ctx->error, "%.250s", err[0] ? err : first_temp);
        st = ACTION_FAILED;
    }
    free(temp);
    free(rep);
    return st;
}

/* Plans a post-acceptance action: a job the commit makes durable once the chain succeeded. */
static void defer(struct plan *plan, const struct rule_set *rs, const struct action *a, size_t ai,
                  struct action_ctx *ctx)
{
    struct spool_job *j = spool_job_new(ctx->msg, rs->name, ctx->rule_name, (int)ai, a->type->name,
                                        ctx->rcpts, ctx->nrcpts, (int)plan->njobs + 1);
    j->expire_after_ms = a->expire_after_ms;
    j->on_failure =
        action_effective_policy(a) == ON_FAILURE_CONTINUE ? ON_FAILURE_CONTINUE : ON_FAILURE_RETRY;
    /* The job takes the action with it: a reload that edits, moves or removes the rule later
     * does not change what this accepted message gets. */
    j->action_params = a->params ? xstrdup(a->params) : NULL;
    j->action_config = a->config_file ? xstrdup(a->config_file) : NULL;
    plan_add_job(plan, j);
    ctx->eval->deferred = 1;
}

/* `sluice test`: what a post-acceptance action would send. */
static void explain_delivery(const struct rule_set *rs, const struct action *a, size_t ai,
                             struct action_ctx *ctx)
{
    struct spool_job *j = spool_job_new(ctx->msg, rs->name, ctx->rule_name, (int)ai, a->type->name,
                                        ctx->rcpts, ctx->nrcpts, 1);
    message_trace_headers(ctx->msg, NULL, &j->content);
    buf_append(&j->content, ctx->msg->body.data, ctx->msg->body.len);
    struct buf out = {0};
    if (a->type->explain)
        a->type->explain(a->state, j, &out);
    int in_session = a->type->deliver_each && action_effective_policy(a) == ON_FAILURE_TEMPFAIL;
    for (size_t i = 0; i < j->env.nrcpts; i++)
        action_note(ctx, "%s, for %s", in_session ? "in the session" : "after acceptance",
                    j->env.rcpts[i]);
    if (out.len)
        action_note(ctx, "%s", buf_cstr(&out));
    buf_free(&out);
    spool_job_free(j);
}

static enum action_status run_action(const struct rule_set *rs, const struct action *a, size_t ai,
                                     struct action_ctx *ctx)
{
    const struct eval_opts *opts = ctx->eval->opts;
    if (!a->type->deliver)
        return a->type->run(a->state, ctx);
    if (ctx->dry_run) {
        explain_delivery(rs, a, ai, ctx);
        return ACTION_OK;
    }
    if (a->type->deliver_each && action_effective_policy(a) == ON_FAILURE_TEMPFAIL)
        return deliver_each_now(rs, a, ai, ctx);
    if (action_effective_policy(a) == ON_FAILURE_TEMPFAIL || opts->deliver_inline)
        return deliver_now(rs, a, ai, ctx);
    defer(ctx->eval->plan, rs, a, ai, ctx);
    return ACTION_OK;
}

/* Runs one rule's actions for the recipients in ctx. Returns the status that ends the rule
 * (OK when all ran), with failures described in plan->error. A failed action whose policy is
 * "continue" or "drop" does not fail the message. */
static enum action_status run_rule(const struct rule_set *rs, const struct rule *r,
                                   struct action_ctx *ctx)
{
    struct plan *plan = ctx->eval->plan;
    const struct eval_observer *obs = ctx->eval->opts->observer;
    for (size_t ai = 0; ai < r->nactions && ctx->nrcpts > 0; ai++) {
        const struct action *a = r->actions[ai];
        ctx->error[0] = '\0';
        if (obs && obs->action_started)
            obs->action_started(obs->arg, a);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        ctx->eval->deferred = 0;
        /* Before it runs: a replace_recipient changes ctx->rcpts to the new recipients. */
        action_settle_rcpts(a, ctx);
        enum action_status st = run_action(rs, a, ai, ctx);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        /* A whole deferral is no run of the action; one that delivered some recipients now
         * (LMTP) is, but its outcome still waits for the spooled rest. */
        int ran = !ctx->eval->deferred ||
                  (a->type->deliver_each && action_effective_policy(a) == ON_FAILURE_TEMPFAIL);
        if (ran && !ctx->dry_run)
            metrics_action_observe(a->stats, secs);
        if (!ctx->eval->deferred && !ctx->dry_run) {
            if (st == ACTION_FAILED) {
                metrics_count_publish(rs->stats, r->stats, a->stats, PUBLISH_FAILURE);
            } else {
                plan->published = xgrow(plan->published, sizeof *plan->published,
                                        &plan->published_cap, plan->npublished + 1);
                plan->published[plan->npublished++] =
                    (struct publish_record){rs->stats, r->stats, a->stats};
            }
        }
        static const char *const outcome[] = {"ok", "failed", "stop_rule", "stop_rule_set"};
        buf_printf(&plan->actions, "%s%s/%s:%s:%.3fms", plan->actions.len ? "," : "", r->name,
                   a->type->name, outcome[st], secs * 1e3);
        if (obs && obs->action_done)
            obs->action_done(obs->arg, a, outcome[st], st == ACTION_FAILED ? ctx->error : NULL);
        if (st == ACTION_FAILED) {
            snprintf(plan->error, sizeof plan->error, "rule %.64s: %s (line %d): %.250s", r->name,
                     a->type->name, a->line, ctx->error);
            enum on_failure policy = action_effective_policy(a);
            if (policy == ON_FAILURE_CONTINUE || policy == ON_FAILURE_DROP) {
                log_msg(LOG_WARN, "qid=%s %s; on_failure=%s", ctx->msg->env.qid, plan->error,
                        policy == ON_FAILURE_DROP ? "drop" : "continue");
                if (policy == ON_FAILURE_DROP)
                    action_drop_rcpts(ctx);
                plan->error[0] = '\0';
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
    return ACTION_OK;
}

/* After the chain: a recipient that no delivering action ran for, and that nothing refused or
 * dropped, is undelivered (its conditions excluded every delivering rule, or a stop came first).
 * reject refuses it like a bounce (all refused: the reply to DATA; some: the partial-refusal
 * DSN). tempfail fails the whole message with 451 (one reply to DATA for all recipients, and
 * staged copies are taken back, so the retry delivers no second copy) - unless a copy already
 * went where it cannot be taken back (LMTP), where a retry would deliver it twice: then it is
 * refused as with reject. accept accepts and discards, as before the policy; each is logged by the
 * caller from the outcomes and counted here. */
static void judge_undelivered(const struct rule_set *rs, const struct message *m,
                              enum undelivered_policy policy, struct plan *plan)
{
    const char *first = NULL;
    size_t n = 0;
    for (size_t i = 0; i < m->env.nrcpts; i++) {
        struct rcpt_outcome *o = &plan->outcomes[i];
        if (o->refused || o->dropped || o->settled)
            continue;
        o->undelivered = 1;
        atomic_fetch_add(&rs->stats->recipients_undelivered, 1);
        if (!first)
            first = m->env.rcpts[i];
        n++;
        if (policy == UNDELIVERED_REJECT || (policy == UNDELIVERED_TEMPFAIL && plan->irrevocable)) {
            o->refused = 1;
            undelivered_reply(UNDELIVERED_REJECT, m->env.rcpts[i], o->reply, sizeof o->reply);
            o->sender[0] = '\0';
        }
    }
    if (n == 0 || policy != UNDELIVERED_TEMPFAIL || plan->irrevocable)
        return;
    plan->failed = 1;
    undelivered_reply(UNDELIVERED_TEMPFAIL, first, plan->reply, sizeof plan->reply);
    snprintf(plan->error, sizeof plan->error,
             "%zu recipient(s) reach no rule that delivers, first <%.300s> "
             "(server.undelivered = \"tempfail\")",
             n, first);
}

/* The reply to DATA once the chain ran: when every recipient was refused, the first refusal
 * is the reply (no DSN, no backscatter); otherwise the message is accepted. */
static void final_reply(const struct message *m, const struct rcpt_outcome *out, struct plan *res)
{
    size_t refused = 0;
    const char *first = NULL;
    for (size_t i = 0; i < m->env.nrcpts; i++) {
        if (out[i].refused) {
            refused++;
            if (!first)
                first = out[i].reply;
        }
    }
    res->refused = refused;
    if (refused > 0 && refused == m->env.nrcpts)
        snprintf(res->reply, sizeof res->reply, "%s", first);
    else
        snprintf(res->reply, sizeof res->reply, "250 2.0.0 Ok: queued as %s", m->env.qid);
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
        size_t at = m->env.nrcpts;
        for (size_t j = 0; j < m->env.nrcpts; j++)
            if (strcasecmp(m->env.rcpts[j], addrs[i]) == 0)
                at = j;
        if (at == m->env.nrcpts) {
            message_add_rcpt(m, addrs[i]);
            grow_state(st, m->env.nrcpts);
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

/* Why a rule is skipped: "when.subject does not hold", "unless.header[\"X-Spam\"] holds". */
static const char *cond_reason(char *out, size_t len, const char *list, const struct condition *c,
                               const char *what)
{
    int n = cond_label(c, list, out, len);
    if (n >= 0 && (size_t)n < len)
        snprintf(out + n, len - (size_t)n, " %s", what);
    return out;
}

void rules_evaluate(const struct rule_set *rs, struct message *m, const struct rules_settings *sc,
                    struct plan *plan)
{
    rules_evaluate_opts(rs, m, sc, NULL, plan);
}

static void skipped(const struct eval_observer *obs, size_t rule, const char *why)
{
    if (obs && obs->rule_skipped)
        obs->rule_skipped(obs->arg, rule, why);
}

void rules_evaluate_opts(const struct rule_set *rs, struct message *m,
                         const struct rules_settings *sc, const struct eval_opts *opts,
                         struct plan *plan)
{
    static const struct eval_opts defaults = {0};
    if (!opts)
        opts = &defaults;
    const struct eval_observer *obs = opts->observer;
    memset(plan, 0, sizeof *plan);
    struct eval_state st = {.plan = plan, .opts = opts};
    grow_state(&st, m->env.nrcpts ? m->env.nrcpts : 1);
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
        else if (r->tls == TLS_REQUIRE && !m->env.tls)
            why = "requires TLS";
        else if (!cond_list_all(&r->when, m, &cond))
            why = cond_reason(reason, sizeof reason, "when", cond, "does not hold");
        else if (cond_list_any(&r->unless, m, &cond))
            why = cond_reason(reason, sizeof reason, "unless", cond, "holds");
        if (why) {
            skipped(obs, rule_pos, why);
            continue;
        }
        atomic_fetch_add(&r->stats->received, 1);
        if (plan->rules.len)
            buf_puts(&plan->rules, ",");
        buf_puts(&plan->rules, r->name);

        struct action_ctx ctx = {.msg = m,
                                 .rule_name = r->name,
                                 .rcpts = st.idx,
                                 .nrcpts = n,
                                 .batch = &plan->copies,
                                 .outcomes = st.outcomes,
                                 .eval = &st,
                                 .dry_run = opts->dry_run,
                                 .note = obs ? obs->action_note : NULL,
                                 .note_arg = obs ? obs->arg : NULL};
        if (obs && obs->rule_applied)
            obs->rule_applied(obs->arg, rule_pos, m, st.idx, n);
        enum action_status status = run_rule(rs, r, &ctx);
        failed = status == ACTION_FAILED;
        if (failed)
            plan->sys_errno = ctx.sys_errno;
        if (status == ACTION_STOP_RULE_SET) {
            for (; h < nhits; h++)
                if (h == 0 || hits[h].rule != hits[h - 1].rule)
                    skipped(obs, hits[h].rule, "not reached: the chain was stopped");
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
    plan->outcomes = st.outcomes;
    if (failed) {
        plan_fail(plan);
        return;
    }
    judge_undelivered(rs, m, sc->undelivered, plan);
    if (plan->failed)
        return;
    final_reply(m, plan->outcomes, plan);
    if (plan->refused && plan->reply[0] == '2')
        dsn_plan(plan, m, rs->name, sc->hostname, sc->bounce_relay);
}

void rules_count_kept(struct plan *plan)
{
    for (size_t i = 0; !plan->failed && i < plan->npublished; i++)
        metrics_count_publish(plan->published[i].rule_set, plan->published[i].rule,
                              plan->published[i].action, PUBLISH_SUCCESS);
    plan->npublished = 0;
}
