/* Counters with SES's names, per rule set and per rule. Entries are keyed by name and live for
 * the whole process, so a rule that survives a config reload keeps counting. Incremented from
 * worker threads (atomics); read by the metrics exporter. */
#ifndef SLUICE_METRICS_H
#define SLUICE_METRICS_H

#include <stdatomic.h>

struct rule_stats {
    char *rule_set;
    char *rule; /* NULL for the rule set's own counters */
    atomic_ullong received;
    atomic_ullong publish_success;
    atomic_ullong publish_failure;
    atomic_ullong publish_expired;
    struct rule_stats *next;
};

/* Returns the counters for (rule_set, rule), creating them on first use. rule may be NULL.
 * The result is owned by the registry and valid until metrics_shutdown(). */
struct rule_stats *metrics_rule_stats(const char *rule_set, const char *rule);
/* Calls fn for every entry, in creation order. */
void metrics_foreach(void (*fn)(const struct rule_stats *, void *), void *arg);
void metrics_shutdown(void);

#endif
