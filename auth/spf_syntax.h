/* SPF records checked against RFC 7208's grammar (§4.6.1, §5, §6, §7.1, §12) before libspf2
 * sees them, and rewritten into the subset libspf2 evaluates correctly.
 *
 * libspf2 1.2.10 accepts many records RFC 7208 calls permerror (empty domain-specs, numeric
 * top labels, bad macros, duplicate modifiers, control and non-ASCII characters, leading zeros in
 * CIDR lengths), rejects valid ones (a CIDR length of 0, unknown modifiers with '-', '_' or '.'
 * in their names) and evaluates `redirect=` even when the record has `all`. So every SPF record
 * the DNS layer fetches is validated here, and what libspf2 gets is an equivalent record:
 *   - `exp=` and unknown modifiers dropped (sluice does not use explanations; this also keeps
 *     the explanation lookup out of the void-lookup count), `redirect=` dropped when the record
 *     has an `all` mechanism (§6.1);
 *   - `ip4` terms dropped for an IPv6 client and `ip6` terms for an IPv4 client (they can never
 *     match; libspf2 matches `ip6:::FFFF:a.b.c.d` against IPv4 clients);
 *   - `ip4:x/0` as `ip4:0.0.0.0/1 ip4:128.0.0.0/1` (same for ip6), and `a`/`mx` with a
 *     length of 0 for the client's family as a lookup of `DOMAIN` SPF_ANY_SUFFIX, which the DNS
 *     layer answers with the client's own address when DOMAIN has any address record;
 *   - `ptr` as a lookup of `DOMAIN` SPF_PTR_SUFFIX that the DNS layer answers itself;
 *   - literal parts of domain-specs in lower case (DNS names compare case-insensitively;
 *     libspf2's `ptr` comparison does not). */
#ifndef SLUICE_AUTH_SPF_SYNTAX_H
#define SLUICE_AUTH_SPF_SYNTAX_H

#include <stdbool.h>
#include <stddef.h>

struct buf;

/* Appended to a domain whose address records should "match any address" (a CIDR length of 0). */
#define SPF_ANY_SUFFIX ".sluice-cidr0.invalid"
/* `ptr:DOMAIN` becomes `exists:DOMAIN` SPF_PTR_SUFFIX; the DNS layer answers that lookup by doing
 * the §5.5 check itself (libspf2's cannot be told from a %{p} macro's lookups, which are no
 * mechanism of their own for the lookup limit). */
#define SPF_PTR_SUFFIX ".sluice-ptr.invalid"

/* True when the TXT string s is an SPF record: "v=spf1" (any case) then a space or its end. */
bool spf_is_record(const char *s, size_t len);

/* What the macro letters expand to in one check_host() (RFC 7208 §7.3): s, l, o the sender and
 * its parts, d the domain whose record this is, i the client address in macro form (dotted
 * quad, or dotted nibbles for IPv6), h the HELO name, v "in-addr" or "ip6". NULL: unknown.
 * With them, digit transformers that keep the whole value are dropped from the libspf2 form
 * (libspf2 1.2.10 mis-expands `%{d2}` of a two-label domain and every N >= the part count). */
struct spf_macro_values {
    const char *s, *l, *o, *d, *i, *h, *v;
};

/* Validates the SPF record rec (len bytes, may hold NULs) for a client of the given family.
 * Returns 0 and appends the libspf2 form to out, or -1 with a short reason in err. mv may be
 * NULL (macros are then passed on as written). */
int spf_record_prepare(const char *rec, size_t len, bool client_v6,
                       const struct spf_macro_values *mv, struct buf *out, char *err,
                       size_t errlen);

#endif
