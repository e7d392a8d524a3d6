/* The receiver's counters and the names of their labels. */
#include "receiver/smtp_stats.h"

struct smtp_stats smtp_stats;

static const char *const reason_names[REJECT_REASONS] = {
    "unknown_user", "relay_denied",        "tls_required",   "receipt_filter", "size",
    "syntax",       "too_many_recipients", "unsafe_address", "policy",         "undelivered"};

const char *rcpt_reject_reason_name(enum rcpt_reject_reason r)
{
    return (unsigned)r < REJECT_REASONS ? reason_names[r] : "other";
}
