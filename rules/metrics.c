/* Process-wide registry of rule counters: a mutex-protected list, appended to at config load,
 * never shrunk before shutdown (counters must outlive reloads). */
#include "rules/metrics.h"
#include "core/xalloc.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct rule_stats *head, **tail = &head;

static int same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

struct rule_stats *metrics_rule_stats(const char *rule_set, const char *rule)
{
    pthread_mutex_lock(&lock);
    struct rule_stats *s;
    for (s = head; s; s = s->next)
        if (same(s->rule_set, rule_set) && same(s->rule, rule))
            break;
    if (!s) {
        s = xcalloc(1, sizeof *s);
        s->rule_set = xstrdup(rule_set);
        s->rule = rule ? xstrdup(rule) : NULL;
        *tail = s;
        tail = &s->next;
    }
    pthread_mutex_unlock(&lock);
    return s;
}

const char *publish_outcome_name(enum publish_outcome o)
{
    static const char *const names[PUBLISH_OUTCOMES] = {"success", "failure", "expired"};
    return (unsigned)o < PUBLISH_OUTCOMES ? names[o] : "other";
}

void metrics_count_publish(struct rule_stats *rule_set, struct rule_stats *rule,
                           struct action_stats *action, enum publish_outcome o)
{
    atomic_fetch_add(&rule_set->publish[o], 1);
    atomic_fetch_add(&rule->publish[o], 1);
    atomic_fetch_add(&action->publish[o], 1);
}

void metrics_count_publish_named(const char *rule_set, const char *rule, const char *action,
                                 enum publish_outcome o)
{
    metrics_count_publish(metrics_rule_stats(rule_set, NULL), metrics_rule_stats(rule_set, rule),
                          metrics_action_stats(action), o);
}

void metrics_foreach(void (*fn)(const struct rule_stats *, void *), void *arg)
{
    pthread_mutex_lock(&lock);
    for (struct rule_stats *s = head; s; s = s->next)
        fn(s, arg);
    pthread_mutex_unlock(&lock);
}

const double action_latency_bounds[ACTION_LATENCY_BUCKETS] = {
    0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5};

static struct action_stats *actions_head, **actions_tail = &actions_head;

struct action_stats *metrics_action_stats(const char *action)
{
    pthread_mutex_lock(&lock);
    struct action_stats *s;
    for (s = actions_head; s; s = s->next)
        if (strcmp(s->action, action) == 0)
            break;
    if (!s) {
        s = xcalloc(1, sizeof *s);
        s->action = xstrdup(action);
        s->latency.bounds = action_latency_bounds;
        s->latency.nbounds = ACTION_LATENCY_BUCKETS;
        *actions_tail = s;
        actions_tail = &s->next;
    }
    pthread_mutex_unlock(&lock);
    return s;
}

void metrics_action_observe(struct action_stats *s, double seconds)
{
    atomic_fetch_add(&s->invocations, 1);
    histogram_observe(&s->latency, seconds);
}

void metrics_action_foreach(void (*fn)(const struct action_stats *, void *), void *arg)
{
    pthread_mutex_lock(&lock);
    for (struct action_stats *s = actions_head; s; s = s->next)
        fn(s, arg);
    pthread_mutex_unlock(&lock);
}

void metrics_shutdown(void)
{
    pthread_mutex_lock(&lock);
    while (actions_head) {
        struct action_stats *n = actions_head->next;
        free(actions_head->action);
        free(actions_head);
        actions_head = n;
    }
    actions_tail = &actions_head;
    while (head) {
        struct rule_stats *n = head->next;
        free(head->rule_set);
        free(head->rule);
        free(head);
        head = n;
    }
    tail = &head;
    pthread_mutex_unlock(&lock);
}
