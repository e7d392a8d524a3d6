/* Recipient classes against rules' recipient conditions, without the index: `sluice check`
 * runs once, and a class (a whole domain) is not an address the index could look up. */
#include "rules/reach.h"
#include "actions/action.h"
#include "core/address.h"
#include "core/buf.h"
#include "rules/ruleset.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Every address local@domain (local set), every user of domain, or (subdomains) every user of
 * any subdomain of domain that no rule names. */
struct rclass {
    const char *local;
    const char *domain;
    bool subdomains;
};

static bool cond_covers(const struct rcpt_cond *c, const struct rclass *k)
{
    if (k->local) {
        char addr[600];
        snprintf(addr, sizeof addr, "%s@%s", k->local, k->domain);
        return rcpt_cond_match(c, addr);
    }
    if (c->local) /* one user does not cover a domain's users */
        return false;
    if (k->subdomains)
        return c->subdomains && (strcasecmp(k->domain, c->domain) == 0 ||
                                 domain_matches(k->domain, c->domain, true));
    return domain_matches(k->domain, c->domain, c->subdomains);
}

static bool rule_covers(const struct rule *r, const struct rclass *k)
{
    if (!r->enabled)
        return false;
    if (r->nrcpts == 0)
        return true;
    for (size_t i = 0; i < r->nrcpts; i++)
        if (cond_covers(&r->rcpts[i], k))
            return true;
    return false;
}

/* Whether any rule of rs covers k, and whether one of those delivers. */
static void reach(const struct rule_set *rs, const struct rclass *k, bool *matched, bool *delivers)
{
    *matched = *delivers = false;
    for (size_t i = 0; i < rs->nrules; i++) {
        if (!rule_covers(rs->rules[i], k))
            continue;
        *matched = true;
        if (rule_delivers(rs->rules[i]))
            *delivers = true;
    }
}

static bool class_accepted(const struct rclass *k, char *const *domains, size_t n)
{
    if (!k->subdomains)
        return domain_accepted(domains, n, k->domain);
    for (size_t i = 0; i < n; i++)
        if (domains[i][0] == '.' && (strcasecmp(k->domain, domains[i] + 1) == 0 ||
                                     domain_matches(k->domain, domains[i] + 1, true)))
            return true;
    return false;
}

static void class_text(const struct rclass *k, struct buf *out)
{
    if (k->local)
        buf_printf(out, "%s@%s", k->local, k->domain);
    else if (k->subdomains)
        buf_printf(out, "any subdomain of %s", k->domain);
    else
        buf_puts(out, k->domain);
}

struct warner {
    size_t nsets;
    enum undelivered_policy policy;
    struct buf seen; /* "\nset\tclass\n" of each class already warned about */
    void (*warn)(void *arg, int line, const char *text);
    void *arg;
};

static const char *policy_effect(enum undelivered_policy p)
{
    switch (p) {
    case UNDELIVERED_TEMPFAIL:
        return "deferred with 451 4.3.0";
    case UNDELIVERED_ACCEPT:
        return "accepted and kept nowhere";
    default:
        return "refused with 550 5.1.1";
    }
}

/* Warns about k in rs (NULL: in no rule set) once. matched says whether rules cover k at all
 * (else RCPT refuses it as an unknown user). */
static void warn_class(struct warner *w, const struct rule_set *rs, const struct rclass *k,
                       int line, const char *source, bool matched)
{
    struct buf key = {0}, text = {0};
    buf_printf(&key, "\n%s\t", rs ? rs->name : "");
    class_text(k, &key);
    buf_puts(&key, "\n");
    if (w->seen.len && strstr(buf_cstr(&w->seen), buf_cstr(&key))) {
        buf_free(&key);
        return;
    }
    buf_append(&w->seen, key.data, key.len);
    if (rs && w->nsets > 1)
        buf_printf(&text, "rule set \"%s\": ", rs->name);
    buf_puts(&text, "recipients in ");
    class_text(k, &text);
    buf_printf(&text, " (%s) ", source);
    if (!matched) {
        buf_puts(&text, "match no rule: they are refused as unknown users (550 5.1.1)");
    } else {
        buf_puts(&text, "reach no rule that delivers (");
        int first = 1;
        for (size_t i = 0; action_types[i]; i++) {
            if (!action_types[i]->delivers || strcmp(action_types[i]->name, "drop") == 0)
                continue;
            buf_printf(&text, "%s%s", first ? "" : ", ", action_types[i]->name);
            first = 0;
        }
        buf_printf(&text, ") or drops: they are %s (server.undelivered = \"%s\")",
                   policy_effect(w->policy), undelivered_policy_name(w->policy));
    }
    w->warn(w->arg, line, buf_cstr(&text));
    buf_free(&key);
    buf_free(&text);
}

void reach_check(struct rule_set *const *sets, size_t nsets, char *const *domains, size_t ndomains,
                 enum undelivered_policy policy,
                 void (*warn)(void *arg, int line, const char *text), void *arg)
{
    struct warner w = {.nsets = nsets, .policy = policy, .warn = warn, .arg = arg};
    for (size_t d = 0; d < ndomains; d++) {
        struct rclass k = {NULL, domains[d][0] == '.' ? domains[d] + 1 : domains[d],
                           domains[d][0] == '.'};
        char source[300];
        snprintf(source, sizeof source, "domains: \"%.250s\"", domains[d]);
        bool any_matched = false, any_delivers = false;
        for (size_t s = 0; s < nsets; s++) {
            bool matched, delivers;
            reach(sets[s], &k, &matched, &delivers);
            any_matched = any_matched || matched;
            any_delivers = any_delivers || delivers;
            /* A set that does not cover the domain at all may be another tenant's: only one
             * whose rules take the recipient and then keep it nowhere is a mistake. */
            if (matched && !delivers)
                warn_class(&w, sets[s], &k, 0, source, true);
        }
        if (!any_matched)
            warn_class(&w, NULL, &k, 0, source, false);
    }
    for (size_t s = 0; s < nsets; s++) {
        const struct rule_set *rs = sets[s];
        for (size_t i = 0; i < rs->nrules; i++) {
            const struct rule *r = rs->rules[i];
            for (size_t c = 0; r->enabled && c < r->nrcpts; c++) {
                const struct rcpt_cond *rc = &r->rcpts[c];
                struct rclass k = {rc->local, rc->domain, rc->subdomains};
                if (!class_accepted(&k, domains, ndomains))
                    continue;
                bool matched, delivers;
                reach(rs, &k, &matched, &delivers);
                if (delivers)
                    continue;
                char source[300];
                snprintf(source, sizeof source, "rule \"%.250s\"", r->name);
                warn_class(&w, rs, &k, r->line, source, true);
            }
        }
    }
    buf_free(&w.seen);
}
