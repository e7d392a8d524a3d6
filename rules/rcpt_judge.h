/* The RCPT-time decision, shared by the SMTP session and `sluice test`: is the domain ours, does
 * an enabled rule match the address (index lookup only: conditions on content cannot be known
 * yet), does TLS policy allow it, can every matching action handle it, and does any of them
 * deliver (else the undelivered policy applies, rules/undelivered.h). */
#ifndef SLUICE_RCPT_JUDGE_H
#define SLUICE_RCPT_JUDGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rules/undelivered.h"

struct rule_set;

/* Why a recipient is refused, a label of the receiver's counters (receiver/smtp_stats.h). The
 * judge gives unknown user, relay denied, TLS required, unsafe address and undelivered; the
 * session the rest. */
enum rcpt_reject_reason {
    REJECT_UNKNOWN_USER,
    REJECT_RELAY_DENIED,
    REJECT_TLS_REQUIRED,
    REJECT_RECEIPT_FILTER,
    REJECT_SIZE,
    REJECT_SYNTAX,
    REJECT_TOO_MANY,
    REJECT_UNSAFE_ADDRESS,
    REJECT_POLICY,      /* refused by a rule action in the session (bounce) */
    REJECT_UNDELIVERED, /* matching rules, none of which delivers (server.undelivered) */
    REJECT_REASONS
};

/* What the judge needs from the server settings (filled by the caller from struct server_cfg,
 * so that rules/ does not depend on config/). Borrowed. */
struct rcpt_settings {
    char *const *domains; /* server.domains */
    size_t ndomains;
    enum undelivered_policy undelivered;
};

/* Returns NULL to accept, or the complete SMTP refusal with its reason for the counters. The
 * refusal is static text or written into reply (replylen bytes, the caller's). hits and cap are
 * scratch space the caller owns (grown as needed, freed by the caller). */
const char *rcpt_judge(const struct rcpt_settings *st, const struct rule_set *rs, const char *addr,
                       bool tls, uint32_t **hits, size_t *cap, enum rcpt_reject_reason *why,
                       char *reply, size_t replylen);

#endif
