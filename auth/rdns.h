/* The client's forward-confirmed reverse DNS name (FCrDNS: the PTR name whose A/AAAA records
 * include the address), for the Received: header and the scanners. */
#ifndef SLUICE_RDNS_H
#define SLUICE_RDNS_H

/* Returns the name (caller frees) or NULL when there is none or it does not confirm. Uses the
 * calling thread's resolver: call after dns_begin(). */
char *rdns_lookup(const char *ip);

#endif
