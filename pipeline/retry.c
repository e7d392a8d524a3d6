/* The retry scheduler: one timer per pending job, attempts on the worker pool, the outcome
 * (done, retry later, expired, given up) decided back on the event loop. */
#include "pipeline/retry.h"
#include "actions/action.h"
#include "actions/dsn.h"
#include "auth/dns.h"
#include "config/config.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "core/workers.h"
#include "rules/metrics.h"
#include "rules/ruleset.h"
#include "spool/spool.h"
#include "spool/spool_control.h"

#include <errno.h>
#include <event2/event.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* An action rebuilt from the parameters jobs carry, shared by the jobs with the same ones. */
struct built {
    struct action *action;
    int refs; /* pending jobs holding it */
    struct built *next;
};

struct pending {
    struct work work; /* first: the pool hands it back */
    struct retry *r;
    struct spool_job *job;
    struct event *timer;
    struct config *cfg; /* pinned while an attempt runs */
    const struct action *action;
    struct built *built; /* the job's own action when the config in force has none like it */
    int ok;
    int rejected; /* final refusal: no retry */
    int ran;      /* the action's code ran (the job's content could be loaded) */
    double secs;  /* how long it ran */
    int in_flight;
    /* An operator's drop that came while an attempt was in flight: applied when it ends. */
    struct spool_request *drop;
    char err[512];
    struct pending *next, *prev;
};

struct retry {
    struct event_base *base;
    struct worker_pool *pool;
    struct config *const *cfg_ref;
    struct pending *head;
    struct built *built;
    int lock_fd;           /* the spool lock, held while serve runs (spool_control.h) */
    struct event *control; /* polls the control directory for the CLI's requests */
    char data_dir[4096];   /* where the lock was taken: requests are read there */
};

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Backoff after n failed attempts: initial * 2^(n-1), capped. */
static long long backoff_ms(const struct config *cfg, int attempts)
{
    long long d = cfg->server.retry_initial_ms;
    for (int i = 1; i < attempts && d < cfg->server.retry_max_ms; i++)
        d *= 2;
    return d < cfg->server.retry_max_ms ? d : cfg->server.retry_max_ms;
}

/* A job of version 1 (no parameters of its own): its action by position in the config in
 * force, if it is still there. */
static const struct action *find_action(const struct config *cfg, const struct spool_job *j)
{
    const struct rule_set *rs = config_find_rule_set(cfg, j->rule_set);
    for (size_t i = 0; rs && i < rs->nrules; i++) {
        const struct rule *r = rs->rules[i];
        if (strcmp(r->name, j->rule) != 0)
            continue;
        if (j->action_index < 0 || (size_t)j->action_index >= r->nactions)
            return NULL;
        const struct action *a = r->actions[j->action_index];
        return strcmp(a->type->name, j->action_type) == 0 && a->type->deliver ? a : NULL;
    }
    return NULL;
}

static bool same_action(const struct action *a, const char *type, const char *params,
                        const char *config_file)
{
    return a->params && a->type->deliver && strcmp(a->type->name, type) == 0 &&
           strcmp(a->params, params) == 0 && strcmp(a->config_file, config_file) == 0;
}

/* An action of the config in force with exactly the job's parameters, wherever it now is:
 * the usual case, which needs no rebuilding. */
static const struct action *find_same(const struct config *cfg, const struct spool_job *j)
{
    for (size_t s = 0; s < cfg->nsets; s++)
        for (size_t i = 0; i < cfg->sets[s]->nrules; i++) {
            const struct rule *r = cfg->sets[s]->rules[i];
            for (size_t k = 0; k < r->nactions; k++)
                if (same_action(r->actions[k], j->action_type, j->action_params, j->action_config))
                    return r->actions[k];
        }
    return NULL;
}

/* The job's action built from its own parameters, shared with other jobs that carry the same;
 * NULL with the reason in err when they cannot be built. On the event loop, like a reload
 * (building an action is what a reload does, and it happens only for jobs whose action the
 * config in force no longer has). */
static struct built *build(struct retry *r, const struct spool_job *j, char *err, size_t errlen)
{
    for (struct built *b = r->built; b; b = b->next)
        if (same_action(b->action, j->action_type, j->action_params, j->action_config)) {
            b->refs++;
            return b;
        }
    struct action *a =
        config_action_build(j->action_type, j->action_params, j->action_config, err, errlen);
    if (!a)
        return NULL;
    struct built *b = xcalloc(1, sizeof *b);
    b->action = a;
    b->refs = 1;
    b->next = r->built;
    r->built = b;
    return b;
}

static void unbuild(struct retry *r, struct built *b)
{
    if (!b || --b->refs > 0)
        return;
    for (struct built **pp = &r->built; *pp; pp = &(*pp)->next)
        if (*pp == b) {
            *pp = b->next;
            break;
        }
    action_free(b->action);
    free(b);
}

static void job_log(const struct spool_job *j, enum log_level lvl, const char *outcome,
                    const char *error)
{
    struct log_field f[] = {
        LOG_STR("job", j->id),
        LOG_STR("qid", j->env.qid),
        LOG_STR("rule_set", j->rule_set),
        LOG_STR("rule", j->rule),
        LOG_STR("action", j->action_type),
        LOG_INT("attempts", j->attempts),
        LOG_STR("outcome", outcome),
        LOG_STR("error", error && *error ? error : NULL),
    };
    log_fields(lvl, "action", f, sizeof f / sizeof f[0]);
}

/* Removes p from the scheduler and the spool; the message file goes with the last job. */
static void finish(struct pending *p)
{
    struct retry *r = p->r;
    int others = 0;
    for (struct pending *q = r->head; q; q = q->next)
        if (q != p && strcmp(q->job->env.qid, p->job->env.qid) == 0)
            others = 1;
    spool_remove_job((*r->cfg_ref)->server.data_dir, p->job, !others);
    if (p->prev)
        p->prev->next = p->next;
    else
        r->head = p->next;
    if (p->next)
        p->next->prev = p->prev;
    event_free(p->timer);
    unbuild(r, p->built);
    spool_job_free(p->job);
    free(p->drop);
    free(p);
}

static void attempt_run(struct work *w)
{
    struct pending *p = (struct pending *)w;
    p->err[0] = '\0';
    p->ran = 0;
    dns_begin(&p->cfg->dns); /* this thread's resolver, with the settings in force */
    if (spool_job_load_content(p->job, p->err, sizeof p->err) < 0) {
        p->ok = 0;
        return;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = p->action->type->deliver(p->action->state, p->job, p->err, sizeof p->err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    p->ran = 1;
    p->secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    p->ok = rc == 0;
    p->rejected = rc == ACTION_DELIVER_REJECTED;
}

static void schedule(struct pending *p, long long delay_ms);

/* DSNs belong to no rule: they count no publish (rules/metrics.h). */
static int publish_counted(const struct spool_job *j)
{
    return strcmp(j->action_type, "dsn") != 0;
}

static void count(const struct spool_job *j, enum publish_outcome o)
{
    metrics_count_publish_named(j->rule_set, j->rule, j->action_type, o);
}

/* An operator's drop of p (not in flight): counted, logged, removed with its message file
 * when it was the message's last job, and the outcome written for the CLI. */
static void drop_now(struct pending *p, const struct spool_request *req)
{
    struct spool_job *j = p->job;
    int others = 0;
    for (struct pending *q = p->r->head; q; q = q->next)
        others += q != p && strcmp(q->job->env.qid, j->env.qid) == 0;
    char text[512];
    if (j->held)
        snprintf(text, sizeof text, "dropped job %s (held, never run)", j->id);
    else
        snprintf(text, sizeof text,
                 "dropped job %s (%s for rule %s/%s, %zu recipients, %d attempts)", j->id,
                 j->action_type, j->rule_set, j->rule, j->env.nrcpts, j->attempts);
    size_t off = strlen(text);
    snprintf(text + off, sizeof text - off, "; %s",
             others ? "its message file stays for the message's other jobs"
                    : "its message file was the last job's and is removed");
    if (j->held) {
        struct log_kv kv[] = {{"job", j->id}, {"outcome", "dropped"}};
        log_event(LOG_WARN, "action", kv, 2);
    } else {
        atomic_fetch_add(&metrics_action_stats(j->action_type)->spool_dropped, 1);
        job_log(j, LOG_WARN, "dropped", "by the operator (sluice spool drop)");
    }
    spool_request_done(p->r->data_dir, req, true, text);
    free(p->drop);
    p->drop = NULL;
    finish(p);
}

static void attempt_done(struct work *w)
{
    struct pending *p = (struct pending *)w;
    struct spool_job *j = p->job;
    const struct config *cfg = p->cfg;
    p->in_flight = 0;
    j->attempts++;
    if (p->ran)
        metrics_action_observe(metrics_action_stats(j->action_type), p->secs);
    int counted = publish_counted(j);
    if (p->ok) {
        if (counted)
            count(j, PUBLISH_SUCCESS);
        job_log(j, LOG_INFO, "delivered", NULL);
        if (p->drop) {
            char text[256];
            snprintf(text, sizeof text,
                     "job %s was delivered by the attempt in flight when the drop came; it is "
                     "gone",
                     j->id);
            spool_request_done(p->r->data_dir, p->drop, true, text);
        }
        config_release(p->cfg);
        finish(p);
        return;
    }
    /* Once per publish: the attempts after the first failure are retries. */
    if (counted && j->attempts == 1)
        count(j, PUBLISH_FAILURE);
    if (p->drop) {
        config_release(p->cfg);
        p->cfg = NULL;
        drop_now(p, p->drop);
        return;
    }
    /* created is whole seconds: count from the end of that second, so that a job is never
     * given up before its expire_after (a 1 s expiry seen as gone at the first attempt). */
    long long age = now_ms() - ((long long)j->created * 1000 + 999);
    if (p->rejected) {
        job_log(j, LOG_ERR, "rejected", p->err);
    } else if (j->on_failure == ON_FAILURE_CONTINUE) {
        job_log(j, LOG_WARN, "failed", p->err);
    } else if (age >= j->expire_after_ms) {
        if (counted)
            count(j, PUBLISH_EXPIRED);
        atomic_fetch_add(&metrics_action_stats(j->action_type)->spool_expired, 1);
        job_log(j, LOG_ERR, "expired", p->err);
    } else {
        long long delay = backoff_ms(cfg, j->attempts);
        j->next_attempt = (time_t)((now_ms() + delay) / 1000);
        j->last_attempt = time(NULL);
        free(j->last_error);
        j->last_error = xstrdup(p->err);
        char err[256];
        if (spool_write_job(cfg->server.data_dir, j, err, sizeof err) < 0)
            log_msg(LOG_ERR, "spool: cannot update job %s: %s", j->id, err);
        atomic_fetch_add(&metrics_action_stats(j->action_type)->spool_retries, 1);
        job_log(j, LOG_WARN, "retry", p->err);
        config_release(p->cfg);
        p->cfg = NULL;
        schedule(p, delay);
        return;
    }
    config_release(p->cfg);
    finish(p);
}

/* The action to run job p with, or NULL when there is none: p is then finished, or, when its
 * action cannot be built, left in the list without a timer (so that the message file stays
 * while its job file does). */
static const struct action *action_for(struct pending *p, const struct config *cfg)
{
    struct spool_job *j = p->job;
    if (strcmp(j->action_type, "dsn") == 0 && j->dsn_report)
        return dsn_action();
    if (!j->action_params) {
        const struct action *a = find_action(cfg, j);
        if (!a) {
            /* Version 1: the rule or action is gone, and the job does not say what it was.
             * An expired publish always counted its failure, here too when it never ran. */
            if (publish_counted(j)) {
                if (j->attempts == 0)
                    count(j, PUBLISH_FAILURE);
                count(j, PUBLISH_EXPIRED);
            }
            atomic_fetch_add(&metrics_action_stats(j->action_type)->spool_expired, 1);
            job_log(j, LOG_ERR, "expired", "the action is no longer in the config");
            finish(p);
        }
        return a;
    }
    const struct action *a = find_same(cfg, j);
    if (a)
        return a;
    char err[512];
    if (!p->built)
        p->built = build(p->r, j, err, sizeof err);
    if (p->built)
        return p->built->action;
    /* Never run with a guess: the file stays for an operator (or a fixed sluice) to look at,
     * and so does its message. */
    log_msg(LOG_ERR,
            "spool job %s: cannot build its %s action from the parameters it carries "
            "(%s): left in place, not run",
            j->id, j->action_type, err);
    return NULL;
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct pending *p = arg;
    struct config *cfg = *p->r->cfg_ref;
    const struct action *a = action_for(p, cfg); /* NULL: p may be freed */
    if (!a)
        return;
    p->action = a;
    p->cfg = config_retain(cfg);
    p->in_flight = 1;
    p->work.run = attempt_run;
    p->work.done = attempt_done;
    worker_pool_submit(p->r->pool, &p->work);
}

static void schedule(struct pending *p, long long delay_ms)
{
    if (delay_ms < 0)
        delay_ms = 0;
    struct timeval tv = {(time_t)(delay_ms / 1000), (suseconds_t)(delay_ms % 1000) * 1000};
    evtimer_add(p->timer, &tv);
}

static void add_one(struct retry *r, struct spool_job *j, long long delay_ms)
{
    struct pending *p = xcalloc(1, sizeof *p);
    p->r = r;
    p->job = j;
    p->timer = evtimer_new(r->base, on_timer, p);
    p->next = r->head;
    if (r->head)
        r->head->prev = p;
    r->head = p;
    /* A held job only keeps its message file (see finish): it is never run. */
    if (!j->held)
        schedule(p, delay_ms);
}

void retry_add(struct retry *r, struct spool_job **jobs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        add_one(r, jobs[i], 0);
}

static struct pending *find_pending(struct retry *r, const char *id)
{
    for (struct pending *p = r->head; p; p = p->next)
        if (strcmp(p->job->id, id) == 0)
            return p;
    return NULL;
}

/* retry ID|*: due now, unless held or in flight (a job never runs twice at once). */
static void control_retry(struct retry *r, const struct spool_request *req)
{
    char text[512];
    if (strcmp(req->id, "*") == 0) {
        size_t due = 0, held = 0, busy = 0;
        for (struct pending *p = r->head; p; p = p->next) {
            if (p->job->held || p->drop)
                held += p->job->held;
            else if (p->in_flight)
                busy++;
            else {
                schedule(p, 0);
                due++;
            }
        }
        snprintf(text, sizeof text,
                 "%zu jobs run now, %zu already in flight, %zu held ones left as they are", due,
                 busy, held);
        log_msg(LOG_INFO, "spool: retry of every job requested: %s", text);
        spool_request_done(r->data_dir, req, true, text);
        return;
    }
    struct pending *p = find_pending(r, req->id);
    bool ok = p && !p->job->held && !p->drop;
    if (!p)
        snprintf(text, sizeof text, "no job %s in the spool", req->id);
    else if (p->job->held)
        snprintf(text, sizeof text,
                 "job %s is held (its file cannot be run by this sluice; see the log at start): "
                 "it cannot be retried, only dropped",
                 req->id);
    else if (p->drop)
        snprintf(text, sizeof text, "job %s is being dropped", req->id);
    else if (p->in_flight)
        snprintf(text, sizeof text, "job %s: an attempt is in flight now", req->id);
    else {
        schedule(p, 0);
        snprintf(text, sizeof text, "job %s runs now", req->id);
        log_msg(LOG_INFO, "spool: job %s: retry requested, runs now", req->id);
    }
    spool_request_done(r->data_dir, req, ok, text);
}

static void control_drop(struct retry *r, const struct spool_request *req)
{
    struct pending *p = find_pending(r, req->id);
    if (!p) {
        char text[256];
        snprintf(text, sizeof text, "no job %s in the spool", req->id);
        spool_request_done(r->data_dir, req, false, text);
    } else if (p->in_flight) {
        /* Its outcome is written when the attempt ends (attempt_done): the job is then gone
         * either way, and is never attempted again. */
        p->drop = xmalloc(sizeof *p->drop);
        *p->drop = *req;
        log_msg(LOG_INFO, "spool: job %s: drop requested; its attempt in flight ends first",
                p->job->id);
    } else {
        drop_now(p, req);
    }
}

/* Applies the CLI's requests, oldest first; a drop waiting for its attempt is skipped (its
 * request file stays until the outcome is written). */
static void control_poll(struct retry *r)
{
    struct spool_request *reqs;
    size_t n = spool_requests(r->data_dir, &reqs);
    for (size_t i = 0; i < n; i++) {
        bool waiting = false;
        for (struct pending *p = r->head; p && !waiting; p = p->next)
            waiting = p->drop && strcmp(p->drop->token, reqs[i].token) == 0;
        if (waiting)
            continue;
        if (reqs[i].op == SPOOL_OP_DROP)
            control_drop(r, &reqs[i]);
        else
            control_retry(r, &reqs[i]);
    }
    free(reqs);
}

static void on_control(evutil_socket_t fd, short what, void *arg)
{
    control_poll(arg);
}

struct retry *retry_new(struct event_base *base, struct worker_pool *pool,
                        struct config *const *cfg_ref, char *err, size_t errlen)
{
    const char *data_dir = (*cfg_ref)->server.data_dir;
    /* A CLI holds the lock for milliseconds; another serve on the same spool for good. */
    int fd = spool_lock(data_dir, 10000, err, errlen);
    if (fd < 0) {
        if (fd == -EWOULDBLOCK)
            snprintf(err, errlen,
                     "%s/spool/lock is held by another process: is another sluice serve "
                     "running with data_dir \"%s\"?",
                     data_dir, data_dir);
        return NULL;
    }
    struct retry *r = xcalloc(1, sizeof *r);
    r->base = base;
    r->pool = pool;
    r->cfg_ref = cfg_ref;
    r->lock_fd = fd;
    snprintf(r->data_dir, sizeof r->data_dir, "%s", data_dir);
    struct spool_job **jobs;
    size_t n = spool_load_jobs(data_dir, &jobs);
    /* A restart works like a queue flush: every job is tried at once, then backs off again. */
    size_t resumed = 0;
    for (size_t i = 0; i < n; i++) {
        resumed += !jobs[i]->held;
        add_one(r, jobs[i], 0);
    }
    free(jobs);
    if (resumed)
        log_msg(LOG_INFO, "spool: resuming %zu post-acceptance jobs", resumed);
    /* Requests left by a CLI while no server answered: before any job runs. Then a short poll,
     * which needs no signal, so a CLI run as root or as sluice's user works alike. */
    control_poll(r);
    r->control = event_new(base, -1, EV_PERSIST, on_control, r);
    struct timeval tv = {0, 200 * 1000};
    event_add(r->control, &tv);
    return r;
}

void retry_free(struct retry *r)
{
    if (!r)
        return;
    while (r->head) {
        struct pending *p = r->head;
        r->head = p->next;
        event_free(p->timer);
        config_release(p->cfg);
        unbuild(r, p->built);
        spool_job_free(p->job);
        free(p->drop); /* its request stays: the next start applies it */
        free(p);
    }
    if (r->control)
        event_free(r->control);
    if (r->lock_fd >= 0)
        close(r->lock_fd);
    free(r);
}

size_t retry_depth(const struct retry *r, struct retry_depth **out)
{
    struct retry_depth *d = NULL;
    size_t n = 0, cap = 0;
    for (const struct pending *p = r->head; p; p = p->next) {
        size_t i = 0;
        while (i < n && strcmp(d[i].action, p->job->action_type) != 0)
            i++;
        if (i == n) {
            d = xgrow(d, sizeof *d, &cap, n + 1);
            d[n++] = (struct retry_depth){p->job->action_type, 0, p->job->created};
        }
        d[i].jobs++;
        if (p->job->created < d[i].oldest)
            d[i].oldest = p->job->created;
    }
    *out = d;
    return n;
}
