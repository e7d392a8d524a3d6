/* Counters that scripts bump with sluice.metric(name, value), exported with the other metrics
 * as sluice_script_metric_total{name="..."}. Process-wide, kept across reloads like the rule
 * counters; safe from any thread. */
#ifndef SLUICE_SCRIPT_METRICS_H
#define SLUICE_SCRIPT_METRICS_H

#include "core/buf.h"

/* At most this many distinct names: a script cannot grow the registry without bound. */
#define SCRIPT_METRICS_MAX 1000

/* Adds value to the counter name ([A-Za-z_][A-Za-z0-9_]{0,63}). Returns 0, or -1 when the name
 * is invalid or the registry is full. */
int script_metric_add(const char *name, unsigned long long value);
/* Appends the Prometheus text for every script counter. */
void script_metrics_render(struct buf *out);

#endif
