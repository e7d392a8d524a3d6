/* The checks behind `sluice check`'s warnings, one function per kind of mistake. */
#include "config/config_warn.h"
#include "actions/action.h"
#include "config/config.h"
#include "core/address.h"
#include "rules/ruleset.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Recipient conditions have no wildcards: "*@example.test" is the literal mailbox "*". */
static int warn_wildcards(const struct config *c, const struct rule *r, FILE *out)
{
    int n = 0;
    for (size_t i = 0; i < r->nrcpts; i++) {
        const struct rcpt_cond *rc = &r->rcpts[i];
        if (rc->local && strpbrk(rc->local, "*?")) {
            fprintf(out,
                    "%s:%d: warning: rule '%s': recipient '%s' matches only that literal mailbox "
                    "(recipients have no wildcards; \"%s\" is the whole domain)\n",
                    c->path, r->line, r->name, rc->text, rc->domain);
            n++;
        }
    }
    return n;
}

/* Whether some recipient in domain d (a subdomain of it when subdomains) can pass RCPT. */
static bool reachable(const struct config *c, const char *d, bool subdomains)
{
    for (size_t i = 0; i < c->server.ndomains; i++) {
        const char *acc = c->server.domains[i];
        bool acc_sub = acc[0] == '.';
        if (acc_sub)
            acc++;
        if (!subdomains && (acc_sub ? domain_matches(d, acc, true) : strcasecmp(d, acc) == 0))
            return true;
        /* Subdomains of d: an accepted domain below d, or accepted subdomains of d or above. */
        if (subdomains && domain_matches(acc, d, true))
            return true;
        if (subdomains && acc_sub && (domain_matches(d, acc, true) || strcasecmp(d, acc) == 0))
            return true;
    }
    return false;
}

static int warn_unaccepted_domains(const struct config *c, const struct rule *r, FILE *out)
{
    int n = 0;
    for (size_t i = 0; i < r->nrcpts; i++) {
        const struct rcpt_cond *rc = &r->rcpts[i];
        if (reachable(c, rc->domain, rc->subdomains && !rc->local))
            continue;
        fprintf(out,
                "%s:%d: warning: rule '%s': recipient '%s' is in no domain of server.domains: "
                "RCPT refuses it (550 5.7.1), so this never matches\n",
                c->path, r->line, r->name, rc->text);
        n++;
    }
    return n;
}

static int warn_after_stop(const struct config *c, const struct rule *r, FILE *out)
{
    for (size_t i = 0; i + 1 < r->nactions; i++) {
        if (strcmp(r->actions[i]->type->name, "stop") != 0)
            continue;
        const struct action *next = r->actions[i + 1];
        fprintf(out,
                "%s:%d: warning: rule '%s': %s (line %d) and what follows come after stop {} "
                "(line %d) and never run\n",
                c->path, next->line, r->name, next->type->name, next->line, r->actions[i]->line);
        return 1;
    }
    return 0;
}

static int warn_actions(const struct config *c, const struct rule *r, FILE *out)
{
    int n = 0;
    for (size_t i = 0; i < r->nactions; i++) {
        const struct action *a = r->actions[i];
        char why[512];
        if (a->type->warn && a->type->warn(a->state, why, sizeof why)) {
            fprintf(out, "%s:%d: warning: rule '%s': %s\n", c->path, a->line, r->name, why);
            n++;
        }
    }
    return n;
}

static int warn_reports(const struct config *c, FILE *out)
{
    const struct dmarc_reports_cfg *d = &c->dmarc_reports;
    if (!d->line || !d->send || c->server.bounce_relay)
        return 0;
    fprintf(out,
            "%s:%d: warning: dmarc_reports { send = true } but server { bounce_relay } is not "
            "set: the reports have nowhere to go and are not sent\n",
            c->path, d->line);
    return 1;
}

int config_warn(const struct config *c, FILE *out)
{
    int n = warn_reports(c, out);
    for (size_t i = 0; i < c->nsets; i++) {
        const struct rule_set *rs = c->sets[i];
        for (size_t j = 0; j < rs->nrules; j++) {
            const struct rule *r = rs->rules[j];
            n += warn_wildcards(c, r, out);
            n += warn_unaccepted_domains(c, r, out);
            n += warn_after_stop(c, r, out);
            n += warn_actions(c, r, out);
        }
    }
    return n;
}
