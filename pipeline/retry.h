/* Runs spooled post-acceptance jobs: the first attempt right after the 250 reply, then retries
 * with exponential backoff until the action's expire_after (SES: 4 hours), counting each
 * publish's outcome (rules/metrics.h). Lives on the event loop; attempts run on the worker pool.
 * On start it resumes every job left in the spool (restart, crash). */
#ifndef SLUICE_RETRY_H
#define SLUICE_RETRY_H

#include <stddef.h>
#include <time.h>

struct config;
struct event_base;
struct spool_job;
struct worker_pool;
struct retry;

/* cfg_ref points at the server's current-config pointer: every attempt runs with the config in
 * force at that moment. Jobs found in the spool are attempted at once (a restart flushes).
 * Holds the spool lock until retry_free and applies the requests of `sluice spool`
 * (spool/spool_control.h) on the event loop. NULL with err when another process holds the
 * lock. */
struct retry *retry_new(struct event_base *base, struct worker_pool *pool,
                        struct config *const *cfg_ref, char *err, size_t errlen);
/* Takes ownership of jobs[0..n) (already durable in the spool) and attempts them now. */
void retry_add(struct retry *r, struct spool_job **jobs, size_t n);
/* Jobs not yet done stay in the spool for the next start. */
void retry_free(struct retry *r);

/* The spool as the scheduler holds it, per action type: how many jobs wait (in flight
 * included) and when the oldest was spooled. */
struct retry_depth {
    const char *action; /* borrowed from a job: valid until the event loop runs on */
    size_t jobs;
    time_t oldest;
};
/* Returns the number of action types with jobs and their depths in *out (caller frees; NULL
 * when 0). On the event loop only. */
size_t retry_depth(const struct retry *r, struct retry_depth **out);

#endif
