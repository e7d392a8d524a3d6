/* The undelivered policy's names and replies. */
#include "rules/undelivered.h"
#include "actions/action.h"
#include "rules/ruleset.h"

#include <stdio.h>
#include <string.h>

static const char *const names[] = {"reject", "tempfail", "accept"};

int undelivered_policy_parse(const char *text, enum undelivered_policy *out)
{
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(text, names[i]) == 0) {
            *out = (enum undelivered_policy)i;
            return 0;
        }
    return -1;
}

const char *undelivered_policy_name(enum undelivered_policy p)
{
    return (unsigned)p < sizeof names / sizeof names[0] ? names[p] : "?";
}

void undelivered_reply(enum undelivered_policy p, const char *addr, char *out, size_t len)
{
    if (p == UNDELIVERED_TEMPFAIL)
        snprintf(out, len,
                 "451 4.3.0 <%.300s>: no rule delivers mail for this recipient, try again later",
                 addr);
    else
        snprintf(out, len, "550 5.1.1 <%.300s>: no rule delivers mail for this recipient", addr);
}

bool rule_delivers(const struct rule *r)
{
    for (size_t i = 0; i < r->nactions; i++)
        if (r->actions[i]->type->delivers)
            return true;
    return false;
}
