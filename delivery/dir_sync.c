/* Per-directory sync generations. A caller takes a ticket (gen_req) after its rename; an fsync
 * covers every ticket issued before it started. One caller at a time runs the fsync (the
 * leader) while later ones wait for the generation that covers their ticket, so N concurrent
 * deliveries into one directory cost about two fsyncs instead of N. */
#include "delivery/dir_sync.h"
#include "core/fsync_dir.h"
#include "core/hash.h"
#include "core/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BUCKETS 256

struct dir_state {
    char *path;
    uint64_t gen_req;  /* tickets issued */
    uint64_t gen_done; /* tickets covered by a completed fsync */
    int busy;          /* a leader is in fsync */
    int users;         /* callers inside dir_sync for this directory */
    struct dir_state *next;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done = PTHREAD_COND_INITIALIZER;
static struct dir_state *table[BUCKETS];

static unsigned bucket(const char *s)
{
    return hash_fnv1a_str(HASH_FNV1A_INIT, s) % BUCKETS;
}

static struct dir_state *get(const char *dir)
{
    struct dir_state **p = &table[bucket(dir)];
    for (; *p; p = &(*p)->next)
        if (strcmp((*p)->path, dir) == 0)
            return *p;
    struct dir_state *d = xcalloc(1, sizeof *d);
    d->path = xstrdup(dir);
    *p = d;
    return d;
}

/* Entries live only while someone uses them, so the table stays as small as the set of
 * directories being written right now. */
static void put(struct dir_state *d)
{
    if (--d->users > 0)
        return;
    struct dir_state **p = &table[bucket(d->path)];
    while (*p != d)
        p = &(*p)->next;
    *p = d->next;
    free(d->path);
    free(d);
}

int dir_sync(const char *dir)
{
    pthread_mutex_lock(&lock);
    struct dir_state *d = get(dir);
    d->users++;
    uint64_t ticket = ++d->gen_req; /* the caller's rename is complete: it comes before this */
    int rc = 0;
    while (d->gen_done < ticket) {
        if (d->busy) {
            pthread_cond_wait(&done, &lock);
            continue;
        }
        d->busy = 1;
        uint64_t covers = d->gen_req; /* every ticket issued so far, ours included */
        pthread_mutex_unlock(&lock);
        rc = fsync_dir(dir);
        pthread_mutex_lock(&lock);
        d->busy = 0;
        if (rc == 0 && covers > d->gen_done)
            d->gen_done = covers;
        pthread_cond_broadcast(&done);
        if (rc < 0)
            break; /* the others find no progress and lead an fsync of their own */
    }
    put(d);
    pthread_mutex_unlock(&lock);
    return rc;
}
