/* The DNS lookups scripts may make (sluice.dns.txt / sluice.dns.mx), behind one function
 * pointer so the server's resolver can be plugged in where it is created. Until it is, every
 * lookup answers "DNS not available". */
#ifndef SLUICE_SCRIPT_DNS_H
#define SLUICE_SCRIPT_DNS_H

#include <stddef.h>

enum script_dns_type { SCRIPT_DNS_TXT = 16, SCRIPT_DNS_MX = 15 };

/* Resolves name within timeout_ms. On success returns 0 with *out a malloc'd array of *n
 * malloc'd strings (TXT: each record's strings joined; MX: "preference exchange"), which the
 * caller frees. Returns 1 when the name or the records do not exist (empty answer), -1 on
 * failure with the reason in err. Called from worker threads: must be thread-safe. */
typedef int (*script_dns_lookup_fn)(const char *name, enum script_dns_type type, int timeout_ms,
                                    char ***out, size_t *n, char *err, size_t errlen);

/* Installs the resolver (NULL: none). Call before workers start. */
void script_dns_set(script_dns_lookup_fn fn);
script_dns_lookup_fn script_dns_get(void);

#endif
