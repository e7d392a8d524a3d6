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
    /* Rule sets only: recipients no delivering action reached (server.undelivered), at RCPT
     * (refused there) or at the end of DATA. */
    atomic_ullong recipients_undelivered;
    struct rule_stats *next;
};

/* Per action type: invocations, failures and a latency histogram. */
#define ACTION_LATENCY_BUCKETS 12
extern const double action_latency_bounds[ACTION_LATENCY_BUCKETS]; /* seconds, ascending */

struct action_stats {
    char *action;
    atomic_ullong invocations;
    atomic_ullong failures;
    atomic_ullong latency_bucket[ACTION_LATENCY_BUCKETS]; /* non-cumulative counts */
    atomic_ullong latency_inf;
    atomic_ullong latency_sum_us;
    struct action_stats *next;
};

struct action_stats *metrics_action_stats(const char *action);
void metrics_action_observe(struct action_stats *s, double seconds, int failed);
void metrics_action_foreach(void (*fn)(const struct action_stats *, void *), void *arg);

/* Returns the counters for (rule_set, rule), creating them on first use. rule may be NULL.
 * The result is owned by the registry and valid until metrics_shutdown(). */
struct rule_stats *metrics_rule_stats(const char *rule_set, const char *rule);
/* Calls fn for every entry, in creation order. */
void metrics_foreach(void (*fn)(const struct rule_stats *, void *), void *arg);
void metrics_shutdown(void);

#endif
