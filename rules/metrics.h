/* Counters with SES's names at three levels: per rule set, per rule, per action type. Entries
 * are keyed by name and live for the whole process, so a rule that survives a config reload
 * keeps counting. Incremented from worker threads and the event loop (atomics); read by the
 * metrics exporter.
 *
 * What each level counts:
 * - received: the rule set, every message evaluated by it; a rule, every message it applied
 *   to (matched a recipient and its conditions). Action types have no received counter: they
 *   count invocations (below).
 * - publish outcomes. A publish is one action of one applying rule, done for one message.
 *   Each publish outcome is counted once, at the same moment, at all three levels (the rule
 *   set holding the rule, the rule holding the action, the action's type), by
 *   metrics_count_publish(), so for one rule set the rule set's count equals the sum over its
 *   rules, and the sum over action types equals the sum over all rule sets:
 *   - success: the action did its work: ran without error in the session (whatever it did:
 *     stored, added a header, bounced, stopped the chain) and the message was kept, or, after
 *     acceptance, the delivery attempt that succeeded, whichever attempt that was.
 *   - failure: the action failed for that message, counted at its first failure only: in the
 *     session whatever the on_failure policy (tempfail, continue, drop); after acceptance at the
 *     first failed delivery attempt (the attempts after it are retries, not new failures). A
 *     publish retried to success counts in failure and success.
 *   - expired: after acceptance, the publish was given up: expire_after passed while it was
 *     failing, or its rule or action left the config. Every expired publish counted a failure
 *     before (one that expires without any attempt counts its failure then).
 *   A post-acceptance action deferred to the spool (on_failure retry or continue) has no
 *   outcome in the session: its outcome comes from the retry scheduler. A failure in the
 *   session is counted when the action returns; a success only once the commit kept the
 *   message (the plan carries it until then, rules_count_kept): a message answered 4xx (an
 *   action failed with on_failure tempfail, or the commit failed) had nothing kept, so the
 *   actions that ran before the failure count no success, and its deferred actions never
 *   run. DSNs belong to no rule and count no publish.
 * - invocations and duration (action types only): every run of an action's code, in the
 *   session or one delivery attempt from the spool.
 * - spool retries and expiries (action types only): the retry scheduler's jobs, DSNs among
 *   them, counted per job event, not per publish. */
#ifndef SLUICE_METRICS_H
#define SLUICE_METRICS_H

#include <stdatomic.h>

#include "core/histogram.h"

enum publish_outcome { PUBLISH_SUCCESS, PUBLISH_FAILURE, PUBLISH_EXPIRED, PUBLISH_OUTCOMES };

struct rule_stats {
    char *rule_set;
    char *rule; /* NULL for the rule set's own counters */
    atomic_ullong received;
    atomic_ullong publish[PUBLISH_OUTCOMES];
    /* Rule sets only: recipients no delivering action reached (server.undelivered), at RCPT
     * (refused there) or at the end of DATA. */
    atomic_ullong recipients_undelivered;
    struct rule_stats *next;
};

/* Per action type: invocations, outcomes and a latency histogram. */
#define ACTION_LATENCY_BUCKETS 12
extern const double action_latency_bounds[ACTION_LATENCY_BUCKETS]; /* seconds, ascending */

struct action_stats {
    char *action;
    atomic_ullong invocations;
    atomic_ullong publish[PUBLISH_OUTCOMES];
    struct histogram latency; /* over action_latency_bounds */
    /* The spool's jobs of this type (DSNs included, as type "dsn"), counted by the retry
     * scheduler: attempts rescheduled after a failure, jobs given up (expire_after passed,
     * or the action left the config), jobs an operator dropped (sluice spool drop). */
    atomic_ullong spool_retries;
    atomic_ullong spool_expired;
    atomic_ullong spool_dropped;
    struct action_stats *next;
};

/* The label value of an outcome: "success", "failure", "expired". */
const char *publish_outcome_name(enum publish_outcome o);

/* Returns the counters for the action type, creating them on first use; owned by the registry
 * and valid until metrics_shutdown(). */
struct action_stats *metrics_action_stats(const char *action);
/* One run of the action's code that took seconds. */
void metrics_action_observe(struct action_stats *s, double seconds);
void metrics_action_foreach(void (*fn)(const struct action_stats *, void *), void *arg);

/* Returns the counters for (rule_set, rule), creating them on first use. rule may be NULL.
 * The result is owned by the registry and valid until metrics_shutdown(). */
struct rule_stats *metrics_rule_stats(const char *rule_set, const char *rule);
/* Counts one publish outcome at the three levels (see the top of this file). */
void metrics_count_publish(struct rule_stats *rule_set, struct rule_stats *rule,
                           struct action_stats *action, enum publish_outcome o);
/* One publish whose outcome waits for the message's fate (a success in the session). */
struct publish_record {
    struct rule_stats *rule_set, *rule;
    struct action_stats *action;
};
/* The same, by names (the retry scheduler knows a job's names only). */
void metrics_count_publish_named(const char *rule_set, const char *rule, const char *action,
                                 enum publish_outcome o);
/* Calls fn for every entry, in creation order. */
void metrics_foreach(void (*fn)(const struct rule_stats *, void *), void *arg);
void metrics_shutdown(void);

#endif
