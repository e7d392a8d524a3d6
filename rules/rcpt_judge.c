/* RCPT-time judgement. */
#include "rules/rcpt_judge.h"
#include "actions/action.h"
#include "core/address.h"
#include "rules/rcpt_index.h"
#include "rules/ruleset.h"

const char *rcpt_judge(const struct rcpt_settings *st, const struct rule_set *rs, const char *addr,
                       bool tls, uint32_t **hits, size_t *cap, enum rcpt_reject_reason *why,
                       char *reply, size_t replylen)
{
    *why = REJECT_RELAY_DENIED;
    if (!domain_accepted(st->domains, st->ndomains, address_domain(addr)))
        return "550 5.7.1 Relaying denied: this server does not accept mail for that domain";
    bool matched = false, delivers = false, tls_refused = false, tls_delivers = false;
    size_t n = rcpt_index_lookup(rs->index, addr, hits, cap);
    for (size_t i = 0; i < n; i++) {
        const struct rule *r = rs->rules[(*hits)[i]];
        if (!r->enabled)
            continue;
        if (r->tls == TLS_REQUIRE && !tls) {
            tls_refused = true;
            tls_delivers = tls_delivers || rule_delivers(r);
            continue;
        }
        matched = true;
        delivers = delivers || rule_delivers(r);
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
    if (matched && delivers)
        return NULL;
    /* With STARTTLS a rule would take it: say so rather than call it unknown or undelivered. */
    if (tls_refused && (!matched || tls_delivers)) {
        *why = REJECT_TLS_REQUIRED;
        return "530 5.7.0 Must issue a STARTTLS command first";
    }
    if (!matched) {
        *why = REJECT_UNKNOWN_USER;
        return "550 5.1.1 Recipient address rejected: User unknown";
    }
    /* Rules match, none delivers: whatever their conditions, the mail would be kept nowhere. */
    *why = REJECT_UNDELIVERED;
    if (st->undelivered == UNDELIVERED_ACCEPT)
        return NULL;
    undelivered_reply(st->undelivered, addr, reply, replylen);
    return reply;
}
