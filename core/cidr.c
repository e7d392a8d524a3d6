/* CIDR parsing and matching for trusted-source lists (PROXY protocol, XCLIENT). */
#include "core/cidr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* Reads a numeric address into family/bytes; IPv4-mapped IPv6 is folded to IPv4 so that a
 * dual-stack listener's peers match the IPv4 blocks operators write. */
static int read_ip(const char *text, int *family, unsigned char out[16])
{
    if (inet_pton(AF_INET, text, out) == 1) {
        *family = AF_INET;
        return 0;
    }
    unsigned char v6[16];
    if (inet_pton(AF_INET6, text, v6) != 1)
        return -1;
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(v6, mapped, 12) == 0) {
        *family = AF_INET;
        memcpy(out, v6 + 12, 4);
    } else {
        *family = AF_INET6;
        memcpy(out, v6, 16);
    }
    return 0;
}

int cidr_parse(const char *text, struct cidr *c, const char **why)
{
    char host[64];
    const char *slash = strchr(text, '/');
    size_t hl = slash ? (size_t)(slash - text) : strlen(text);
    if (hl == 0 || hl >= sizeof host) {
        *why = "expected an address like \"10.0.0.0/8\" or \"2001:db8::/32\"";
        return -1;
    }
    memcpy(host, text, hl);
    host[hl] = '\0';
    memset(c, 0, sizeof *c);
    /* Parsed without folding: "::ffff:0:0/96" is an IPv6 block as written. */
    if (inet_pton(AF_INET, host, c->addr) == 1)
        c->family = AF_INET;
    else if (inet_pton(AF_INET6, host, c->addr) == 1)
        c->family = AF_INET6;
    else {
        *why = "not a numeric IPv4 or IPv6 address";
        return -1;
    }
    int max = c->family == AF_INET ? 32 : 128;
    c->prefix = max;
    if (slash) {
        const char *p = slash + 1;
        if (!*p || strlen(p) > 3 || strspn(p, "0123456789") != strlen(p)) {
            *why = "prefix length must be a decimal number";
            return -1;
        }
        c->prefix = atoi(p);
        if (c->prefix > max) {
            *why = c->family == AF_INET ? "IPv4 prefix length exceeds 32"
                                        : "IPv6 prefix length exceeds 128";
            return -1;
        }
    }
    for (int bit = c->prefix; bit < max; bit++) {
        if (c->addr[bit / 8] & (0x80 >> (bit % 8))) {
            *why = "address has bits set beyond the prefix length";
            return -1;
        }
    }
    return 0;
}

bool cidr_match(const struct cidr *c, const char *ip)
{
    int family;
    unsigned char a[16];
    if (read_ip(ip, &family, a) < 0 || family != c->family)
        return false;
    int full = c->prefix / 8, rest = c->prefix % 8;
    if (memcmp(a, c->addr, (size_t)full) != 0)
        return false;
    if (rest == 0)
        return true;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (a[full] & mask) == c->addr[full];
}

bool cidr_list_match(const struct cidr *list, size_t n, const char *ip)
{
    for (size_t i = 0; i < n; i++)
        if (cidr_match(&list[i], ip))
            return true;
    return false;
}

void cidr_format(const struct cidr *c, char *out, size_t outlen)
{
    char ip[INET6_ADDRSTRLEN];
    inet_ntop(c->family, c->addr, ip, sizeof ip);
    snprintf(out, outlen, "%s/%d", ip, c->prefix);
}
