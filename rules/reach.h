/* For `sluice check`: which recipients reach no delivering rule. The classes examined are each
 * accepted domain pattern (every user of a domain, or of any subdomain no rule names) and each
 * recipient condition of an enabled rule (an address, a domain, a subdomain tree) that lies in
 * an accepted domain. Conditions are ignored: a class is reached when some enabled rule whose
 * recipients cover it has a delivering action (rules/undelivered.h: rule_delivers). */
#ifndef SLUICE_REACH_H
#define SLUICE_REACH_H

#include <stddef.h>

#include "rules/undelivered.h"

struct rule_set;

/* Calls warn once per class that reaches no delivering rule, with the complete warning text
 * (the rule set named when there are several) and the line of the rule whose recipient
 * condition it is (0 for the accepted domains of server { }). Borrowed arguments. */
void reach_check(struct rule_set *const *sets, size_t nsets, char *const *domains, size_t ndomains,
                 enum undelivered_policy policy,
                 void (*warn)(void *arg, int line, const char *text), void *arg);

#endif
