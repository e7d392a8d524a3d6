#include "reports/dmarc_timer.h"
#include "config/config.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "core/workers.h"
#include "reports/dmarc_run.h"

#include <event2/event.h>
#include <stdlib.h>
#include <time.h>

struct run {
    struct work w; /* first: the pool hands back this pointer */
    struct dmarc_timer *t;
    struct config *cfg; /* retained for the run */
    time_t begin, end;
};

struct dmarc_timer {
    struct event_base *base;
    struct worker_pool *pool;
    struct config **cfg;
    struct event *ev;
    int running;
};

static void say(bool is_error, const char *line, void *ud)
{
    log_msg(is_error ? LOG_WARN : LOG_INFO, "dmarc reports: %s", line);
}

static void run_reports(struct work *w)
{
    struct run *r = (struct run *)w;
    dmarc_reports_run(r->cfg, r->begin, r->end, NULL, true, say, NULL);
}

static void run_done(struct work *w)
{
    struct run *r = (struct run *)w;
    r->t->running = 0;
    config_release(r->cfg);
    free(r);
}

static void on_check(evutil_socket_t fd, short what, void *arg)
{
    struct dmarc_timer *t = arg;
    struct timeval every = {DMARC_TIMER_CHECK_S, 0};
    event_add(t->ev, &every);
    struct config *cfg = *t->cfg;
    const struct dmarc_reports_cfg *dr = &cfg->dmarc_reports;
    if (!dr->line || !dr->send || t->running)
        return;
    struct run *r = xcalloc(1, sizeof *r);
    r->w.run = run_reports;
    r->w.done = run_done;
    r->t = t;
    r->cfg = config_retain(cfg);
    r->end = time(NULL) / dr->interval_s * dr->interval_s;
    r->begin = r->end - dr->interval_s;
    t->running = 1;
    worker_pool_submit(t->pool, &r->w);
}

struct dmarc_timer *dmarc_timer_new(struct event_base *base, struct worker_pool *pool,
                                    struct config **cfg)
{
    struct dmarc_timer *t = xcalloc(1, sizeof *t);
    t->base = base;
    t->pool = pool;
    t->cfg = cfg;
    t->ev = event_new(base, -1, 0, on_check, t);
    /* The first check soon after start: reports a restart delayed go out now. */
    struct timeval first = {DMARC_TIMER_FIRST_CHECK_S, 0};
    event_add(t->ev, &first);
    return t;
}

void dmarc_timer_free(struct dmarc_timer *t)
{
    if (!t)
        return;
    event_free(t->ev);
    free(t);
}
