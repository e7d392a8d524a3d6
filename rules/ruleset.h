/* Rule sets and rules: the parsed, immutable form of the config's rule_set blocks. Built by the
 * config loader, owned by a struct config, freed with rule_set_free(). */
#ifndef SLUICE_RULESET_H
#define SLUICE_RULESET_H

#include <stdbool.h>
#include <stddef.h>

#include "rules/conditions.h"

struct action;
struct rule_stats;
struct rcpt_index;

enum tls_policy { TLS_OPTIONAL, TLS_REQUIRE };

/* One recipient condition, SES syntax: "user@domain" (also user+label@domain), "domain"
 * (that domain only), ".domain" (every subdomain). */
struct rcpt_cond {
    char *text;   /* as written */
    char *local;  /* NULL for domain conditions */
    char *domain; /* lower-case, without the leading dot */
    bool subdomains;
};

struct rule {
    char *name;
    int line;
    bool enabled;
    struct rcpt_cond *rcpts; /* none: every accepted domain */
    size_t nrcpts;
    enum tls_policy tls;
    bool scan;
    struct cond_list when;   /* all must hold */
    struct cond_list unless; /* none may hold */
    struct action **actions;
    size_t nactions;
    struct rule_stats *stats;
};

struct rule_set {
    char *name;
    int line;
    struct rule **rules;
    size_t nrules;
    size_t rules_cap;
    struct rule_stats *stats;
    struct rcpt_index *index; /* built once the set is complete */
};

/* Parses a recipient condition; returns -1 with a message in err when malformed. */
int rcpt_cond_parse(const char *text, struct rcpt_cond *out, char *err, size_t errlen);
void rcpt_cond_free(struct rcpt_cond *c);
/* True when addr (a valid mailbox) satisfies the condition. */
bool rcpt_cond_match(const struct rcpt_cond *c, const char *addr);
/* True when the rule's recipient conditions accept addr (no conditions: always). */
bool rule_matches_rcpt(const struct rule *r, const char *addr);

void rule_free(struct rule *r);
void rule_set_free(struct rule_set *rs);

#endif
