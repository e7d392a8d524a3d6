/* IPv4/IPv6 networks in CIDR notation ("192.0.2.0/24", "2001:db8::/32", or a bare address).
 * IPv4-mapped IPv6 addresses match IPv4 networks. */
#ifndef SLUICE_CIDR_H
#define SLUICE_CIDR_H

#include <stdbool.h>
#include <stddef.h>

struct cidr {
    int family; /* AF_INET or AF_INET6 */
    unsigned char addr[16];
    int prefix;
};

/* Returns 0, or -1 when text is not a valid network. Host bits must be zero. */
int cidr_parse(const char *text, struct cidr *out);
/* True when the numeric address ip (text) lies in the network. */
bool cidr_match(const struct cidr *c, const char *ip);
/* True when ip lies in any of the n networks. */
bool cidr_match_any(const struct cidr *list, size_t n, const char *ip);
/* Writes the network back as text. */
void cidr_format(const struct cidr *c, char *out, size_t outlen);

#endif
