/* CIDR blocks ("10.0.0.0/8", "2001:db8::/32", or a bare address meaning one host) and matching
 * of numeric client addresses against them. Pure; no allocation. */
#ifndef SLUICE_CIDR_H
#define SLUICE_CIDR_H

#include <stdbool.h>
#include <stddef.h>

struct cidr {
    int family;             /* AF_INET or AF_INET6 */
    unsigned char addr[16]; /* network bytes, host bits cleared */
    int prefix;             /* 0..32 or 0..128 */
};

/* Parses text into c. Returns 0, or -1 with a short reason in *why. Host bits set beyond the
 * prefix ("10.0.0.1/8") are an error: they usually mean a typo in the prefix. */
int cidr_parse(const char *text, struct cidr *c, const char **why);
/* True when the numeric address ip (as sockaddr_ip prints it) lies in c. An IPv4-mapped IPv6
 * address matches IPv4 blocks. Non-numeric ip ("unknown") never matches. */
bool cidr_match(const struct cidr *c, const char *ip);
bool cidr_list_match(const struct cidr *list, size_t n, const char *ip);
/* Writes c back as "network/prefix". */
void cidr_format(const struct cidr *c, char *out, size_t outlen);

#endif
