/* The organizational domain of RFC 7489 §3.2: the public suffix list (Debian's publicsuffix
 * file, read by libpsl) with the list's default rule "*", so that a name under a top-level
 * domain the list does not name still has one. Thread-safe; the list is loaded on first use
 * and kept for the life of the process. */
#ifndef SLUICE_AUTH_ORG_DOMAIN_H
#define SLUICE_AUTH_ORG_DOMAIN_H

#include <stdbool.h>
#include <stddef.h>

/* Writes the organizational domain of d (lower case, without a trailing dot) to out; "" when
 * d is itself a public suffix, is not a domain name (empty label, not UTF-8), does not fit
 * in outlen, or the list could not be loaded. */
void dmarc_org_domain(const char *d, char *out, size_t outlen);

/* False when no public suffix list could be loaded (logged once). */
bool dmarc_org_domain_ready(void);

#endif
