/* dmarc_report_messages_total{domain, source_ip, disposition, dkim, spf}: messages reported
 * in ingested DMARC aggregate reports. Process-wide, mutex-protected, never shrunk before
 * shutdown; capped at DMARC_METRICS_MAX_SERIES label sets (source_ip is unbounded in the wild),
 * rows beyond the cap are counted in sluice_dmarc_report_series_dropped_total. */
#ifndef SLUICE_DMARC_DMARC_METRICS_H
#define SLUICE_DMARC_DMARC_METRICS_H

#include "core/buf.h"

struct json_t;

#define DMARC_METRICS_MAX_SERIES 10000

/* Adds every record's count of the parsed report doc (dmarc_xml_parse's shape). */
void dmarc_metrics_add_report(struct json_t *doc);
/* Appends the Prometheus text of the counters to out. */
void dmarc_metrics_render(struct buf *out);
void dmarc_metrics_shutdown(void);

#endif
