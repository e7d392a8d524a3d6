/* A Prometheus histogram of durations: fixed ascending bucket bounds, lock-free observation
 * from any thread, rendered in the text format (cumulative _bucket rows, _sum, _count). */
#ifndef SLUICE_HISTOGRAM_H
#define SLUICE_HISTOGRAM_H

#include <stdatomic.h>

struct buf;

#define HISTOGRAM_MAX_BOUNDS 16

struct histogram {
    const double *bounds; /* ascending upper bounds in seconds; static storage */
    int nbounds;          /* at most HISTOGRAM_MAX_BOUNDS */
    atomic_ullong counts[HISTOGRAM_MAX_BOUNDS + 1]; /* per bucket, not cumulative; last: +Inf */
    atomic_ullong sum_us;
};

/* Counts one observation of seconds. */
void histogram_observe(struct histogram *h, double seconds);
/* Appends name_bucket{LABELS,le="..."} (cumulative, ending with +Inf), name_sum{LABELS} and
 * name_count{LABELS}. labels is "" or label pairs already escaped ('action="store"'). The
 * rows are read one by one while others may observe: a scrape can be off by the observations
 * it races with, never non-cumulative. */
void histogram_render(const struct histogram *h, struct buf *b, const char *name,
                      const char *labels);

#endif
