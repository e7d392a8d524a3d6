/* The one DNS layer of the authentication checks (SPF, DKIM, DMARC), on libunbound.
 *
 * Each worker thread has its own ub_ctx (created on first use, kept across messages, freed when
 * the thread exits), so the three checks of one message share one cache and no locking is
 * needed; threads do not share caches. In front of it sits a small per-thread answer cache
 * (dns_cache.h) that serves repeated lookups without the resolver thread. The context
 * forwards to dns { servers } or to the system resolver's servers. Every lookup waits at most dns {
 * timeout_ms }; a timeout, SERVFAIL or any resolver error is DNS_TEMPFAIL, which the checks turn
 * into temperror. */
#ifndef SLUICE_AUTH_DNS_H
#define SLUICE_AUTH_DNS_H

#include <stddef.h>

struct ub_result;

/* dns { servers = { "ip:port", ... }, timeout_ms = N }: where the authentication checks send
 * their lookups. No servers: the system resolver's (/etc/resolv.conf). */
struct dns_cfg {
    int line; /* 0 when the block is absent */
    char **servers;
    size_t nservers;
    long long timeout_ms;
};

enum dns_status {
    DNS_OK,       /* answer with data */
    DNS_NXDOMAIN, /* name does not exist */
    DNS_NODATA,   /* name exists, no record of that type */
    DNS_TEMPFAIL, /* timeout, SERVFAIL, refused, resolver error */
};

/* Binds the calling thread's resolver to the dns settings d (re-creating it when they
 * changed) and starts a new lookup budget for one message. Call before dns_query. */
void dns_begin(const struct dns_cfg *d);
/* Looks up name/rrtype (class IN). On DNS_OK/NXDOMAIN/NODATA *res (when res is not NULL) is
 * the libunbound result, which the caller frees with ub_resolve_free; on DNS_TEMPFAIL *res is
 * NULL. */
enum dns_status dns_query(const char *name, int rrtype, struct ub_result **res);
/* Concatenates the character-strings of every TXT record in res into a list of strings
 * (one per record, caller frees each and the array). */
char **dns_txt_strings(const struct ub_result *res, size_t *count);
/* Decodes an uncompressed wire-format domain name (as libunbound hands out PTR and MX rdata)
 * into dotted text. Returns -1 when malformed, too long, or when a label holds a byte that is
 * not a printable, header-safe character. */
int dns_wire_name(const unsigned char *p, size_t len, char *out, size_t outlen);
/* Frees the calling thread's resolver now (the thread-exit destructor does it otherwise; the
 * main thread must call this itself). */
void dns_thread_cleanup(void);
/* A short name of the last failure for logs and headers ("timeout", "SERVFAIL", ...). */
const char *dns_last_error(void);

/* Process-wide counts of dns_query calls, by how they ended (sluice_dns_queries_total{result}),
 * and of those answered by the answer cache. Each call counts once in exactly one result. */
enum dns_result {
    DNS_RESULT_OK,       /* DNS_OK */
    DNS_RESULT_NXDOMAIN, /* DNS_NXDOMAIN (a name that cannot exist included) */
    DNS_RESULT_NODATA,   /* DNS_NODATA */
    DNS_RESULT_TIMEOUT,  /* no answer within timeout_ms or the message's lookup budget */
    DNS_RESULT_SERVFAIL, /* SERVFAIL or another error rcode from the server */
    DNS_RESULT_ERROR,    /* no resolver, or libunbound failed */
    DNS_RESULTS
};
struct dns_counts {
    unsigned long long queries[DNS_RESULTS];
    unsigned long long cache_hits;
};
void dns_counts(struct dns_counts *out);
/* "ok", "nxdomain", "nodata", "timeout", "servfail", "error". */
const char *dns_result_name(enum dns_result r);

#endif
