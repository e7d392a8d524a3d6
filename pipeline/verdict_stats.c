/* Verdict counters (verdict_stats.h). */
#include "pipeline/verdict_stats.h"
#include "core/buf.h"
#include "core/verdict.h"

#include <stdatomic.h>
#include <stddef.h>

enum { CHECK_SPF, CHECK_DKIM, CHECK_DMARC, CHECK_SPAM, CHECK_VIRUS, CHECKS };

static const char *const check_names[CHECKS] = {"spf", "dkim", "dmarc", "spam", "virus"};
/* Indexed by enum verdict; VERDICT_UNSET is never counted. */
static const char *const result_names[] = {NULL, "pass", "fail", "gray", "processing_failed"};
#define RESULTS (sizeof result_names / sizeof result_names[0])

static atomic_ullong counts[CHECKS][RESULTS];

static void count(int check, enum verdict v)
{
    if (v > VERDICT_UNSET && (size_t)v < RESULTS)
        atomic_fetch_add(&counts[check][v], 1);
}

void verdict_stats_count(const struct verdicts *v)
{
    count(CHECK_SPF, v->spf);
    count(CHECK_DKIM, v->dkim);
    count(CHECK_DMARC, v->dmarc);
    count(CHECK_SPAM, v->spam);
    count(CHECK_VIRUS, v->virus);
}

void verdict_stats_render(struct buf *b)
{
    buf_puts(b, "# HELP sluice_verdicts_total Messages judged, per check that ran and its SES "
                "verdict.\n# TYPE sluice_verdicts_total counter\n");
    for (int c = 0; c < CHECKS; c++)
        for (size_t r = 1; r < RESULTS; r++)
            buf_printf(b, "sluice_verdicts_total{check=\"%s\",result=\"%s\"} %llu\n",
                       check_names[c], result_names[r],
                       (unsigned long long)atomic_load(&counts[c][r]));
}
