/* A linked list with a small hash index: a report adds one row per record, and reports come
 * in a few times a day per reporter, so the lock is never hot. */
#include "dmarc/dmarc_metrics.h"
#include "core/hash.h"
#include "core/prom_label.h"
#include "core/xalloc.h"

#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define NBUCKETS 1024

struct series {
    char *labels[5]; /* domain, source_ip, disposition, dkim, spf */
    unsigned long long value;
    struct series *next_bucket, *next;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct series *buckets[NBUCKETS], *head, **tail = &head;
static size_t nseries;
static unsigned long long dropped;

static unsigned hash(const char *const *labels)
{
    uint32_t h = HASH_FNV1A_INIT;
    for (int i = 0; i < 5; i++) {
        h = hash_fnv1a_str(h, labels[i]);
        h = hash_fnv1a(h, "\xff", 1); /* separator: ("ab","c") differs from ("a","bc") */
    }
    return h % NBUCKETS;
}

static void add(const char *const *labels, unsigned long long n)
{
    unsigned h = hash(labels);
    struct series *s;
    for (s = buckets[h]; s; s = s->next_bucket) {
        int i = 0;
        while (i < 5 && strcmp(s->labels[i], labels[i]) == 0)
            i++;
        if (i == 5)
            break;
    }
    if (!s) {
        if (nseries >= DMARC_METRICS_MAX_SERIES) {
            dropped += n;
            return;
        }
        s = xcalloc(1, sizeof *s);
        for (int i = 0; i < 5; i++)
            s->labels[i] = xstrdup(labels[i]);
        s->next_bucket = buckets[h];
        buckets[h] = s;
        *tail = s;
        tail = &s->next;
        nseries++;
    }
    s->value += n;
}

static const char *str(json_t *obj, const char *key)
{
    const char *v = json_string_value(json_object_get(obj, key));
    return v ? v : "";
}

void dmarc_metrics_add_report(json_t *doc)
{
    const char *domain = str(json_object_get(doc, "policy_published"), "domain");
    size_t i;
    json_t *rec;
    pthread_mutex_lock(&lock);
    json_array_foreach(json_object_get(doc, "records"), i, rec)
    {
        json_t *pe = json_object_get(rec, "policy_evaluated");
        const char *labels[5] = {domain, str(rec, "source_ip"), str(pe, "disposition"),
                                 str(pe, "dkim"), str(pe, "spf")};
        json_int_t n = json_integer_value(json_object_get(rec, "count"));
        add(labels, n > 0 ? (unsigned long long)n : 0);
    }
    pthread_mutex_unlock(&lock);
}

void dmarc_metrics_render(struct buf *b)
{
    static const char *const names[5] = {"domain", "source_ip", "disposition", "dkim", "spf"};
    buf_puts(b, "# HELP sluice_dmarc_report_messages_total Messages counted in ingested DMARC "
                "aggregate reports, by published domain, source and evaluated result.\n"
                "# TYPE sluice_dmarc_report_messages_total counter\n");
    pthread_mutex_lock(&lock);
    for (struct series *s = head; s; s = s->next) {
        buf_puts(b, "sluice_dmarc_report_messages_total{");
        for (int i = 0; i < 5; i++) {
            buf_printf(b, "%s%s=\"", i ? "," : "", names[i]);
            prom_label_value(b, s->labels[i]);
            buf_puts(b, "\"");
        }
        buf_printf(b, "} %llu\n", s->value);
    }
    buf_printf(b,
               "# HELP sluice_dmarc_report_series_dropped_total Reported messages not counted "
               "because the label set limit (%d) was reached.\n"
               "# TYPE sluice_dmarc_report_series_dropped_total counter\n"
               "sluice_dmarc_report_series_dropped_total %llu\n",
               DMARC_METRICS_MAX_SERIES, dropped);
    pthread_mutex_unlock(&lock);
}

void dmarc_metrics_shutdown(void)
{
    pthread_mutex_lock(&lock);
    while (head) {
        struct series *n = head->next;
        for (int i = 0; i < 5; i++)
            free(head->labels[i]);
        free(head);
        head = n;
    }
    tail = &head;
    memset(buckets, 0, sizeof buckets);
    nseries = 0;
    dropped = 0;
    pthread_mutex_unlock(&lock);
}
