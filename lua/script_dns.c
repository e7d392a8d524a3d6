/* The resolver hook for scripts; see script_dns.h. */
#include "lua/script_dns.h"

#include <stdatomic.h>

static _Atomic(script_dns_lookup_fn) lookup;

void script_dns_set(script_dns_lookup_fn fn)
{
    atomic_store(&lookup, fn);
}

script_dns_lookup_fn script_dns_get(void)
{
    return atomic_load(&lookup);
}
