/* A small thread pool for slow work on a message (rule actions, fsync, later DNS, scans and
 * scripts), so the event loop never blocks. run() executes on a worker thread; done() then
 * executes on the event-loop thread, where it may touch sessions again. */
#ifndef SLUICE_WORKERS_H
#define SLUICE_WORKERS_H

struct event_base;

struct work {
    void (*run)(struct work *w);
    void (*done)(struct work *w);
    struct work *next; /* queue link, owned by the pool */
};

struct worker_pool;

struct worker_pool *worker_pool_new(struct event_base *base, int threads);
/* Queues w; the caller keeps ownership and must keep w alive until done() has run. */
void worker_pool_submit(struct worker_pool *p, struct work *w);
/* Finishes every queued job (running their done callbacks), joins the threads, frees p. */
void worker_pool_free(struct worker_pool *p);

#endif
