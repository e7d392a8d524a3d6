/* Forward-confirmed reverse DNS through the shared DNS layer. */
#include "auth/rdns.h"
#include "auth/dns.h"
#include "core/xalloc.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unbound.h>

#define RR_A 1
#define RR_PTR 12
#define RR_AAAA 28

/* "192.0.2.1" -> "1.2.0.192.in-addr.arpa", IPv6 -> nibbles under ip6.arpa. */
static int ptr_name(const char *ip, char *out, size_t len, int *family, unsigned char *addr)
{
    if (inet_pton(AF_INET, ip, addr) == 1) {
        *family = AF_INET;
        snprintf(out, len, "%u.%u.%u.%u.in-addr.arpa", addr[3], addr[2], addr[1], addr[0]);
        return 0;
    }
    if (inet_pton(AF_INET6, ip, addr) == 1) {
        *family = AF_INET6;
        size_t n = 0;
        for (int i = 15; i >= 0 && n + 4 < len; i--)
            n += (size_t)snprintf(out + n, len - n, "%x.%x.", addr[i] & 0xf, addr[i] >> 4);
        snprintf(out + n, len - n, "ip6.arpa");
        return 0;
    }
    return -1;
}

static int confirms(const char *name, int family, const unsigned char *addr)
{
    struct ub_result *res = NULL;
    int type = family == AF_INET ? RR_A : RR_AAAA;
    size_t alen = family == AF_INET ? 4 : 16;
    int ok = 0;
    if (dns_query(name, type, &res) == DNS_OK) {
        for (int i = 0; res->data[i] && !ok; i++)
            ok = (size_t)res->len[i] == alen && memcmp(res->data[i], addr, alen) == 0;
    }
    if (res)
        ub_resolve_free(res);
    return ok;
}

char *rdns_lookup(const char *ip)
{
    char qname[128], name[256];
    unsigned char addr[16];
    int family;
    if (ptr_name(ip, qname, sizeof qname, &family, addr) < 0)
        return NULL;
    struct ub_result *res = NULL;
    char *found = NULL;
    if (dns_query(qname, RR_PTR, &res) == DNS_OK) {
        /* The first PTR that confirms wins; like Postfix, only a few are tried. */
        for (int i = 0; i < 4 && res->data[i] && !found; i++)
            if (dns_wire_name((const unsigned char *)res->data[i], (size_t)res->len[i], name,
                              sizeof name) == 0 &&
                confirms(name, family, addr))
                found = xstrdup(name);
    }
    if (res)
        ub_resolve_free(res);
    return found;
}
