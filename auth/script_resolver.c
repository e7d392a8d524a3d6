/* Plugs the DNS layer into the Lua scripts' sluice.dns.txt / sluice.dns.mx
 * (lua/script_dns.h): same resolver, same cache, same timeout as the authentication checks. */
#include "auth/dns.h"
#include "auth/script_resolver.h"
#include "core/xalloc.h"
#include "lua/script_dns.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unbound.h>

static int lookup(const char *name, enum script_dns_type type, int timeout_ms, char ***out,
                  size_t *n, char *err, size_t errlen)
{
    (void)timeout_ms; /* the DNS layer's own timeout applies (dns { timeout_ms }) */
    struct ub_result *res = NULL;
    enum dns_status st = dns_query(name, (int)type, &res);
    *out = NULL;
    *n = 0;
    if (st == DNS_TEMPFAIL) {
        snprintf(err, errlen, "DNS lookup of %s failed: %s", name, dns_last_error());
        return -1;
    }
    if (st != DNS_OK) {
        if (res)
            ub_resolve_free(res);
        return 1;
    }
    if (type == SCRIPT_DNS_TXT) {
        *out = dns_txt_strings(res, n);
    } else {
        size_t count = 0;
        while (res->data[count])
            count++;
        *out = xcalloc(count ? count : 1, sizeof **out);
        for (size_t i = 0; i < count; i++) {
            const unsigned char *d = (const unsigned char *)res->data[i];
            char host[256];
            if (res->len[i] < 3 || dns_wire_name(d + 2, (size_t)res->len[i] - 2, host, sizeof host))
                continue;
            (*out)[(*n)++] = xasprintf("%u %s", (unsigned)(d[0] << 8 | d[1]), host);
        }
    }
    ub_resolve_free(res);
    return 0;
}

void script_resolver_install(void)
{
    script_dns_set(lookup);
}
