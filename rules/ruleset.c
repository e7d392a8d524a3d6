/* Lifecycle of rules and rule sets. */
#include "rules/ruleset.h"
#include "actions/action.h"
#include "rules/rcpt_index.h"

#include <stdlib.h>

void rule_free(struct rule *r)
{
    if (!r)
        return;
    free(r->name);
    for (size_t i = 0; i < r->nrcpts; i++)
        rcpt_cond_free(&r->rcpts[i]);
    free(r->rcpts);
    cond_list_free(&r->when);
    cond_list_free(&r->unless);
    for (size_t i = 0; i < r->nactions; i++)
        action_free(r->actions[i]);
    free(r->actions);
    free(r);
}

void rule_set_free(struct rule_set *rs)
{
    if (!rs)
        return;
    for (size_t i = 0; i < rs->nrules; i++)
        rule_free(rs->rules[i]);
    free(rs->rules);
    rcpt_index_free(rs->index);
    free(rs->name);
    free(rs);
}
