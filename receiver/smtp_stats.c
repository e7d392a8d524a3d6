/* The receiver's counters and the names of their labels. */
#include "receiver/smtp_stats.h"

/* From a local Maildir write (milliseconds) to slow scans and webhooks run in the session
 * (tens of seconds, near the client's DATA timeout). */
static const double data_reply_bounds[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                           0.5,   1,     2.5,  5,     10,   30,  60};

struct smtp_stats smtp_stats = {
    .data_reply = {.bounds = data_reply_bounds,
                   .nbounds = sizeof data_reply_bounds / sizeof data_reply_bounds[0]}};

static const char *const reason_names[REJECT_REASONS] = {
    "unknown_user", "relay_denied",        "tls_required",   "receipt_filter", "size",
    "syntax",       "too_many_recipients", "unsafe_address", "policy"};

const char *rcpt_reject_reason_name(enum rcpt_reject_reason r)
{
    return (unsigned)r < REJECT_REASONS ? reason_names[r] : "other";
}

const char *mail_reject_reason_name(enum mail_reject_reason r)
{
    static const char *const names[MAIL_REJECT_REASONS] = {"size", "syntax"};
    return (unsigned)r < MAIL_REJECT_REASONS ? names[r] : "other";
}
