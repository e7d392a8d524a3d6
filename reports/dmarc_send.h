/* Sending a DMARC aggregate report (RFC 7489 §7.2.1.1): the XML gzip'd and attached to a mail
 * "Report Domain: D Submitter: S Report-ID: <ID>" to every mailto: of the domain's rua= that
 * is allowed to receive it (§7.1: an address outside the policy domain's organizational domain
 * must be authorized by a "v=DMARC1" TXT record at <domain>._report._dmarc.<its domain>),
 * through server { bounce_relay }. Blocking; for the CLI (and a future timer thread). */
#ifndef SLUICE_REPORTS_DMARC_SEND_H
#define SLUICE_REPORTS_DMARC_SEND_H

#include <stddef.h>
#include <time.h>

#include "core/buf.h"

struct config;

/* The mailto: addresses of a rua= value ("mailto:a@b!10m, mailto:c@d"), size limits dropped.
 * Returns the count; the caller frees each and the array. */
size_t dmarc_rua_mailtos(const char *rua, char ***out);

/* 1 when addr may receive domain's reports, 0 when not, -1 when DNS failed (try later). */
int dmarc_rua_authorized(const struct config *cfg, const char *domain, const char *addr);

/* This server's name in Report-IDs: server { hostname }. */
const char *dmarc_node(const struct config *cfg);

/* Builds the report mail into out (CRLF). */
void dmarc_report_message(const struct config *cfg, const char *receiver, const char *domain,
                          time_t begin, time_t end, const struct buf *xml, char *const *to,
                          size_t nto, struct buf *out);

/* Verifies the rua addresses, builds and sends the report of domain. Returns the number of
 * recipients it went to (0: none authorized, nothing sent) or -1 with err set. Each skipped
 * address is described in skipped (one line each). */
int dmarc_report_send(const struct config *cfg, const char *receiver, const char *domain,
                      time_t begin, time_t end, const struct buf *xml, const char *rua,
                      struct buf *skipped, char *err, size_t errlen);

#endif
