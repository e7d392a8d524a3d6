/* The rule evaluator loop. Per rule: pick the recipients it matches, count Received, run its
 * actions in order, count PublishSuccess/PublishFailure. */
#include "rules/eval.h"
#include "actions/action.h"
#include "actions/maildir.h"
#include "core/log.h"
#include "core/message.h"
#include "core/xalloc.h"
#include "rules/metrics.h"
#include "rules/rcpt_index.h"
#include "rules/ruleset.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* Runs one rule's actions for the recipients in idx[0..n). Returns the status that ends the
 * rule (OK when all ran), with failures described in res->error. */
static enum action_status run_rule(const struct rule *r, struct action_ctx *ctx, size_t *idx,
                                   struct eval_result *res)
{
    for (size_t ai = 0; ai < r->nactions && ctx->nrcpts > 0; ai++) {
        const struct action *a = r->actions[ai];
        ctx->error[0] = '\0';
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        enum action_status st = a->type->run(a->state, ctx);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        metrics_action_observe(
            a->stats, (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
            st == ACTION_FAILED);
        if (st == ACTION_FAILED)
            snprintf(res->error, sizeof res->error, "rule %.64s: %s (line %d): %.150s", r->name,
                     a->type->name, a->line, ctx->error);
        if (st != ACTION_OK)
            return st;
        /* A recipient refused or dropped by this action (a bounce, a script's bounce) gets
         * nothing from the rule's later actions. */
        size_t k = 0;
        for (size_t i = 0; i < ctx->nrcpts; i++)
            if (!ctx->outcomes[idx[i]].refused && !ctx->outcomes[idx[i]].dropped)
                idx[k++] = idx[i];
        ctx->nrcpts = k;
    }
    return ACTION_OK;
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

void rules_evaluate(const struct rule_set *rs, struct message *m, struct eval_result *res)
{
    memset(res, 0, sizeof *res);
    struct maildir_batch batch = {0};
    size_t *idx = xcalloc(m->nrcpts ? m->nrcpts : 1, sizeof *idx);
    struct rcpt_outcome *outcomes = xcalloc(m->nrcpts ? m->nrcpts : 1, sizeof *outcomes);
    int failed = 0;
    size_t nhits;
    struct hit *hits = collect_hits(rs, m, &nhits);

    atomic_fetch_add(&rs->stats->received, 1);
    for (size_t h = 0; h < nhits && !failed;) {
        const struct rule *r = rs->rules[hits[h].rule];
        size_t n = 0;
        for (uint32_t ri = hits[h].rule; h < nhits && hits[h].rule == ri; h++)
            if (!outcomes[hits[h].rcpt].refused && !outcomes[hits[h].rcpt].dropped)
                idx[n++] = hits[h].rcpt;
        if (n == 0 || !r->enabled || (r->tls == TLS_REQUIRE && !m->tls))
            continue;
        if (!cond_list_all(&r->when, m, NULL) || cond_list_any(&r->unless, m, NULL))
            continue;
        atomic_fetch_add(&r->stats->received, 1);
        if (res->rules.len)
            buf_puts(&res->rules, ",");
        buf_puts(&res->rules, r->name);

        struct action_ctx ctx = {
            .msg = m, .rule = r, .rcpts = idx, .nrcpts = n, .batch = &batch, .outcomes = outcomes};
        enum action_status st = run_rule(r, &ctx, idx, res);
        failed = st == ACTION_FAILED;
        if (failed)
            res->sys_errno = ctx.sys_errno;
        atomic_fetch_add(failed ? &r->stats->publish_failure : &r->stats->publish_success, 1);
        if (st == ACTION_STOP_RULE_SET)
            break;
    }
    free(idx);
    free(hits);

    if (!failed) {
        final_reply(m, outcomes, res);
        /* A total refusal delivers nothing; otherwise commit what was staged. */
        if (res->reply[0] != '2')
            maildir_abort(&batch);
        int rc = maildir_commit(&batch, res->error, sizeof res->error);
        if (rc < 0) {
            failed = 1;
            res->sys_errno = -rc;
        }
    }
    if (failed) {
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
    free(res->outcomes);
    res->outcomes = NULL;
}
