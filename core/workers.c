/* Worker pool: a mutex+condvar job queue feeding N threads, and a completion queue drained on
 * the event loop through a self-pipe (written only when the completion queue was empty). */
#include "core/workers.h"
#include "core/log.h"
#include "core/xalloc.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

struct worker_pool {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct work *queue, **queue_tail;
    struct work *done, **done_tail;
    int stopping;
    int nthreads;
    pthread_t *threads;
    int pipefd[2];
    struct event *ev;
    unsigned pending; /* submitted, done() not yet run; event-loop thread only */
};

static void *worker_main(void *arg)
{
    struct worker_pool *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->lock);
        while (!p->queue && !p->stopping)
            pthread_cond_wait(&p->cond, &p->lock);
        struct work *w = p->queue;
        if (!w) {
            pthread_mutex_unlock(&p->lock);
            return NULL;
        }
        p->queue = w->next;
        if (!p->queue)
            p->queue_tail = &p->queue;
        pthread_mutex_unlock(&p->lock);

        w->run(w);

        pthread_mutex_lock(&p->lock);
        int was_empty = p->done == NULL;
        w->next = NULL;
        *p->done_tail = w;
        p->done_tail = &w->next;
        pthread_mutex_unlock(&p->lock);
        if (was_empty) {
            char c = 1;
            while (write(p->pipefd[1], &c, 1) < 0 && errno == EINTR)
                ;
        }
    }
}

static void drain_done(struct worker_pool *p)
{
    char tmp[256];
    while (read(p->pipefd[0], tmp, sizeof tmp) > 0)
        ;
    pthread_mutex_lock(&p->lock);
    struct work *w = p->done;
    p->done = NULL;
    p->done_tail = &p->done;
    pthread_mutex_unlock(&p->lock);
    while (w) {
        struct work *next = w->next;
        p->pending--;
        w->done(w);
        w = next;
    }
}

static void on_pipe(evutil_socket_t fd, short what, void *arg)
{
    drain_done(arg);
}

struct worker_pool *worker_pool_new(struct event_base *base, int threads)
{
    struct worker_pool *p = xcalloc(1, sizeof *p);
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    p->queue_tail = &p->queue;
    p->done_tail = &p->done;
    if (pipe2(p->pipefd, O_NONBLOCK | O_CLOEXEC) < 0) {
        log_msg(LOG_ERR, "worker pool: pipe: %m");
        exit(71);
    }
    p->ev = event_new(base, p->pipefd[0], EV_READ | EV_PERSIST, on_pipe, p);
    event_add(p->ev, NULL);
    p->nthreads = threads;
    p->threads = xcalloc((size_t)threads, sizeof *p->threads);
    for (int i = 0; i < threads; i++) {
        if (pthread_create(&p->threads[i], NULL, worker_main, p) != 0) {
            log_msg(LOG_ERR, "worker pool: cannot start thread %d", i);
            exit(71);
        }
    }
    return p;
}

void worker_pool_submit(struct worker_pool *p, struct work *w)
{
    w->next = NULL;
    p->pending++;
    pthread_mutex_lock(&p->lock);
    *p->queue_tail = w;
    p->queue_tail = &w->next;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
}

void worker_pool_free(struct worker_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stopping = 1;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    fcntl(p->pipefd[0], F_SETFL, O_NONBLOCK);
    drain_done(p);
    event_free(p->ev);
    close(p->pipefd[0]);
    close(p->pipefd[1]);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->cond);
    free(p->threads);
    free(p);
}
