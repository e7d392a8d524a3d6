/* Undelivered recipients: an accepted recipient that no delivering action (actions/action.h:
 * delivers) runs for, and that nothing refused or dropped, would get a 250 and be kept nowhere.
 * server { undelivered } says what sluice does instead; this module holds the policy, its
 * replies, and whether a rule can settle a recipient at all. */
#ifndef SLUICE_UNDELIVERED_H
#define SLUICE_UNDELIVERED_H

#include <stdbool.h>
#include <stddef.h>

struct rule;

enum undelivered_policy {
    UNDELIVERED_REJECT,   /* the default: refused (550 5.1.1), nothing acknowledged */
    UNDELIVERED_TEMPFAIL, /* 451 4.3.0: the sender retries, e.g. while the config is fixed */
    UNDELIVERED_ACCEPT,   /* accepted and discarded, as before the policy existed; logged */
};

/* Parses "reject", "tempfail" or "accept"; -1 for anything else. */
int undelivered_policy_parse(const char *text, enum undelivered_policy *out);
const char *undelivered_policy_name(enum undelivered_policy p);
/* The refusal of addr under p (reject or tempfail), complete SMTP reply text without CRLF. */
void undelivered_reply(enum undelivered_policy p, const char *addr, char *out, size_t len);
/* True when the rule has an action that settles its recipients (delivers, refuses, hands on or
 * drops them), whatever its conditions. */
bool rule_delivers(const struct rule *r);

#endif
