/* The RCPT-time decision, shared by the SMTP session and `sluice test`: is the domain ours, does
 * an enabled rule match the address (index lookup only: conditions on content cannot be known
 * yet), does TLS policy allow it, can every matching action handle it. */
#ifndef SLUICE_RCPT_JUDGE_H
#define SLUICE_RCPT_JUDGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config;
struct rule_set;

/* Why a recipient is refused, a label of the receiver's counters (receiver/smtp_stats.h). The
 * judge gives unknown user, relay denied, TLS required and unsafe address; the session the rest. */
enum rcpt_reject_reason {
    REJECT_UNKNOWN_USER,
    REJECT_RELAY_DENIED,
    REJECT_TLS_REQUIRED,
    REJECT_RECEIPT_FILTER,
    REJECT_SIZE,
    REJECT_SYNTAX,
    REJECT_TOO_MANY,
    REJECT_UNSAFE_ADDRESS,
    REJECT_POLICY, /* refused by a rule action in the session (bounce) */
    REJECT_REASONS
};

/* Returns NULL to accept, or the complete SMTP refusal with its reason for the counters.
 * hits and cap are scratch space the caller owns (grown as needed, freed by the caller). */
const char *rcpt_judge(const struct config *cfg, const struct rule_set *rs, const char *addr,
                       bool tls, uint32_t **hits, size_t *cap, enum rcpt_reject_reason *why);

#endif
