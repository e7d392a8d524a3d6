/* How messages were judged: one count per message and check that ran (SPF, DKIM, DMARC, spam,
 * virus), by SES verdict, for sluice_verdicts_total{check,result}. A check that did not run
 * (auth_checks off, no rule asking for a scan) leaves its verdict unset and counts nothing.
 * Worker threads count (atomics); the metrics exporter reads. */
#ifndef SLUICE_VERDICT_STATS_H
#define SLUICE_VERDICT_STATS_H

struct buf;
struct verdicts;

/* Counts the verdicts of one judged message. */
void verdict_stats_count(const struct verdicts *v);
/* Appends the sluice_verdicts_total family (every check and result, zeros included). */
void verdict_stats_render(struct buf *b);

#endif
