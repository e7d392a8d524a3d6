/* RCPT-time judgement. */
#include "rules/rcpt_judge.h"
#include "actions/action.h"
#include "config/config.h"
#include "core/address.h"
#include "rules/rcpt_index.h"
#include "rules/ruleset.h"

const char *rcpt_judge(const struct config *cfg, const struct rule_set *rs, const char *addr,
                       bool tls, uint32_t **hits, size_t *cap, enum rcpt_reject_reason *why)
{
    *why = REJECT_RELAY_DENIED;
    if (!config_domain_accepted(cfg, address_domain(addr)))
        return "550 5.7.1 Relaying denied: this server does not accept mail for that domain";
    int matched = 0, tls_refused = 0;
    size_t n = rcpt_index_lookup(rs->index, addr, hits, cap);
    for (size_t i = 0; i < n; i++) {
        const struct rule *r = rs->rules[(*hits)[i]];
        if (!r->enabled)
            continue;
        if (r->tls == TLS_REQUIRE && !tls) {
            tls_refused = 1;
            continue;
        }
        matched = 1;
        for (size_t a = 0; a < r->nactions; a++) {
            const struct action *act = r->actions[a];
            const char *refusal =
                act->type->check_rcpt ? act->type->check_rcpt(act->state, r->name, addr) : NULL;
            if (refusal) {
                *why = REJECT_UNSAFE_ADDRESS;
                return refusal;
            }
        }
    }
    if (matched)
        return NULL;
    *why = tls_refused ? REJECT_TLS_REQUIRED : REJECT_UNKNOWN_USER;
    if (tls_refused)
        return "530 5.7.0 Must issue a STARTTLS command first";
    return "550 5.1.1 Recipient address rejected: User unknown";
}
