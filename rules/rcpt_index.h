/* Recipient index of a rule set: finds the rules whose recipient conditions match an address
 * without scanning every rule (exact address, address without +label, domain, each parent
 * domain, and the rules with no recipient condition). Built at config load, read-only after. */
#ifndef SLUICE_RCPT_INDEX_H
#define SLUICE_RCPT_INDEX_H

#include <stddef.h>
#include <stdint.h>

struct rule;
struct rcpt_index;

/* Builds the index over rules[0..n) (rule positions are the indices returned). Caller frees
 * with rcpt_index_free(). */
struct rcpt_index *rcpt_index_build(struct rule *const *rules, size_t n);
void rcpt_index_free(struct rcpt_index *ix);
/* Writes into *out (grown as needed, capacity *cap; caller frees) the positions of the rules
 * whose recipient conditions match addr, ascending and without duplicates. Returns how many. */
size_t rcpt_index_lookup(const struct rcpt_index *ix, const char *addr, uint32_t **out,
                         size_t *cap);

#endif
