/* The script counter registry: a mutex-protected list (scripts add names rarely; the value is
 * an atomic so that bumping an existing counter only takes the lock for the lookup). */
#include "lua/script_metrics.h"
#include "core/xalloc.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct script_metric {
    char name[65];
    atomic_ullong value;
    struct script_metric *next;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct script_metric *head, **tail = &head;
static size_t count;

static int valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64 || (s[0] >= '0' && s[0] <= '9'))
        return 0;
    return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") == n;
}

int script_metric_add(const char *name, unsigned long long value)
{
    if (!valid_name(name))
        return -1;
    pthread_mutex_lock(&lock);
    struct script_metric *m;
    for (m = head; m; m = m->next)
        if (strcmp(m->name, name) == 0)
            break;
    if (!m && count < SCRIPT_METRICS_MAX) {
        m = xcalloc(1, sizeof *m);
        strcpy(m->name, name);
        *tail = m;
        tail = &m->next;
        count++;
    }
    pthread_mutex_unlock(&lock);
    if (!m)
        return -1;
    atomic_fetch_add(&m->value, value);
    return 0;
}

void script_metrics_render(struct buf *out)
{
    buf_puts(out, "# HELP sluice_script_metric_total Counters bumped by scripts with "
                  "sluice.metric(name, value).\n# TYPE sluice_script_metric_total counter\n");
    pthread_mutex_lock(&lock);
    for (struct script_metric *m = head; m; m = m->next)
        buf_printf(out, "sluice_script_metric_total{name=\"%s\"} %llu\n", m->name,
                   (unsigned long long)atomic_load(&m->value));
    pthread_mutex_unlock(&lock);
}
