/* A small answer cache in front of libunbound, one per worker thread (no locking).
 *
 * libunbound caches too, but even a hit in its cache costs a round trip through the
 * context's resolver thread: about 80 system calls and two context switches per message in
 * the benchmark. Here a hit is a hash lookup and a copy. Entries live for the answer's TTL,
 * capped (DNS_CACHE_MAX_TTL_S, DNS_CACHE_MAX_NEG_TTL_S for NXDOMAIN/NODATA); an answer with
 * TTL 0 is not kept; failures are never kept; neither is an answer larger than
 * DNS_CACHE_MAX_ENTRY_BYTES (a sender's domain could otherwise park big TXT answers in every
 * slot). The table is direct-mapped: a new entry replaces whatever shared its slot, so memory
 * stays under DNS_CACHE_SLOTS entries of that size per thread. */
#ifndef SLUICE_AUTH_DNS_CACHE_H
#define SLUICE_AUTH_DNS_CACHE_H

#include "auth/dns.h"

#define DNS_CACHE_SLOTS 1024
#define DNS_CACHE_MAX_TTL_S 300
#define DNS_CACHE_MAX_NEG_TTL_S 60
#define DNS_CACHE_MAX_ENTRY_BYTES 4096

struct dns_cache;
struct ub_result;

/* Caller frees with dns_cache_free. */
struct dns_cache *dns_cache_new(void);
void dns_cache_free(struct dns_cache *c);
/* Drops every entry (the resolver settings changed). */
void dns_cache_clear(struct dns_cache *c);
/* Keeps a copy of res (status DNS_OK, DNS_NXDOMAIN or DNS_NODATA) for name/rrtype, looked up
 * at now_ms (monotonic). res stays the caller's. */
void dns_cache_put(struct dns_cache *c, const char *name, int rrtype, enum dns_status st,
                   const struct ub_result *res, long long now_ms);
/* 1 and the status on a live hit, with *out (when out is not NULL) a fresh copy the caller
 * frees with ub_resolve_free; 0 on a miss or an expired entry. */
int dns_cache_get(struct dns_cache *c, const char *name, int rrtype, long long now_ms,
                  enum dns_status *st, struct ub_result **out);

#endif
