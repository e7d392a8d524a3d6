/* The daemon's side of dmarc_reports { send = true }: every few minutes the event loop checks
 * whether the last complete interval's reports are out, and hands a reporting run to a worker
 * when not. The store remembers what was sent, so restarts and reloads neither skip nor
 * repeat a report; a failed send is retried at the next check. */
#ifndef SLUICE_REPORTS_DMARC_TIMER_H
#define SLUICE_REPORTS_DMARC_TIMER_H

struct config;
struct event_base;
struct worker_pool;
struct dmarc_timer;

#define DMARC_TIMER_CHECK_S 300
#define DMARC_TIMER_FIRST_CHECK_S 1

/* *cfg is read at each check on the event-loop thread (the config in force after reloads). */
struct dmarc_timer *dmarc_timer_new(struct event_base *base, struct worker_pool *pool,
                                    struct config **cfg);
/* After worker_pool_free (a run in flight has finished). Accepts NULL. */
void dmarc_timer_free(struct dmarc_timer *t);

#endif
