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

void metrics_foreach(void (*fn)(const struct rule_stats *, void *), void *arg)
{
    pthread_mutex_lock(&lock);
    for (struct rule_stats *s = head; s; s = s->next)
        fn(s, arg);
    pthread_mutex_unlock(&lock);
}

void metrics_shutdown(void)
{
    pthread_mutex_lock(&lock);
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
