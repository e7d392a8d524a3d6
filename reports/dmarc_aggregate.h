/* Builds DMARC aggregate reports (RFC 7489 §7.2, the XML of Appendix C) from the evaluations
 * recorded by reports/dmarc_store.c: one report per policy domain, rows aggregated by source
 * IP, disposition, evaluated results, identifiers and authentication results. */
#ifndef SLUICE_REPORTS_DMARC_AGGREGATE_H
#define SLUICE_REPORTS_DMARC_AGGREGATE_H

#include <stddef.h>
#include <time.h>

#include "core/buf.h"

struct sqlite3;
struct dmarc_reports_cfg;

/* The policy domains with evaluations in [begin, end) whose latest DMARC record has a rua=
 * tag, sorted. Returns the count (caller frees each and the array) or -1 with err set. */
long dmarc_aggregate_domains(struct sqlite3 *db, time_t begin, time_t end, char ***out, char *err,
                             size_t errlen);

/* Appends the report for domain over [begin, end) to xml; node names this server in the
 * Report-ID (dmarc_report_id). *rua gets the record's rua= value (caller frees) when rua is not
 * NULL. Returns the number of rows or -1 with err set. */
long dmarc_aggregate_build(struct sqlite3 *db, const struct dmarc_reports_cfg *rc, const char *node,
                           const char *domain, time_t begin, time_t end, struct buf *xml,
                           char **rua, char *err, size_t errlen);

/* The Report-ID of domain's report for [begin, end) from node (our server's hostname), into
 * out. Each MX node reports what it saw under its own ID, so with several nodes the reporting
 * domain gets several reports for a period and adds them up. */
void dmarc_report_id(const char *domain, time_t begin, time_t end, const char *node, char *out,
                     size_t len);

/* The value of tag in a DMARC record ("v=DMARC1; p=reject; rua=mailto:a@b"), trimmed, or
 * NULL when absent (caller frees). */
char *dmarc_record_tag(const char *record, const char *tag);

#endif
