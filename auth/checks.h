/* The parts of auth_check(), one per file; all run on the calling worker thread after
 * dns_begin(). */
#ifndef SLUICE_AUTH_CHECKS_H
#define SLUICE_AUTH_CHECKS_H

#include "auth/auth.h"
#include "core/headers.h"
#include "core/verdict.h"

struct message;

/* DKIM: verifies every DKIM-Signature of the message (data/len, header fields in h) and
 * fills a->sigs. Returns the SES verdict. */
enum verdict dkim_check(const char *data, size_t len, const struct hdr_list *h,
                        struct auth_details *a);
/* DMARC from the From: header(s) and the SPF and DKIM results already in a; fills the dmarc
 * fields and *policy. tree_walk: RFC 9989's DNS tree walk instead of RFC 7489's public suffix
 * list. Returns the SES verdict. */
enum verdict dmarc_check(const char *data, const struct hdr_list *h, struct auth_details *a,
                         bool tree_walk, enum dmarc_policy *policy);
/* Prepends Authentication-Results, Received-SPF and the X-Sluice verdict headers. */
void auth_results_add(struct message *m, const char *authserv_id);

#endif
