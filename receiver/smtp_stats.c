/* The receiver's counters and the names of their labels. */
#include "receiver/smtp_stats.h"

#include <string.h>

/* From a local Maildir write (milliseconds) to slow scans and webhooks run in the session
 * (tens of seconds, near the client's DATA timeout). */
static const double data_reply_bounds[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                           0.5,   1,     2.5,  5,     10,   30,  60};

struct smtp_stats smtp_stats = {
    .data_reply = {.bounds = data_reply_bounds,
                   .nbounds = sizeof data_reply_bounds / sizeof data_reply_bounds[0]}};

static const char *const reason_names[REJECT_REASONS] = {
    "unknown_user", "relay_denied",        "tls_required",   "receipt_filter", "size",
    "syntax",       "too_many_recipients", "unsafe_address", "policy",         "undelivered"};

const char *rcpt_reject_reason_name(enum rcpt_reject_reason r)
{
    return (unsigned)r < REJECT_REASONS ? reason_names[r] : "other";
}

const char *mail_reject_reason_name(enum mail_reject_reason r)
{
    static const char *const names[MAIL_REJECT_REASONS] = {"size", "syntax"};
    return (unsigned)r < MAIL_REJECT_REASONS ? names[r] : "other";
}

static const char *const tls_slot_names[TLS_SLOTS] = {"TLSv1.2", "TLSv1.3", "other"};

void smtp_stats_tls_handshake(const char *version)
{
    int v = TLS_SLOT_OTHER;
    for (int i = 0; i < TLS_SLOT_OTHER; i++)
        if (strcmp(version, tls_slot_names[i]) == 0)
            v = i;
    atomic_fetch_add(&smtp_stats.tls_sessions, 1);
    atomic_fetch_add(&smtp_stats.tls_handshakes[v], 1);
}

const char *tls_slot_name(enum tls_version_slot v)
{
    return (unsigned)v < TLS_SLOTS ? tls_slot_names[v] : "other";
}

const char *tls_failure_name(enum tls_failure f)
{
    static const char *const names[TLS_FAILS] = {"error", "closed", "timeout"};
    return (unsigned)f < TLS_FAILS ? names[f] : "other";
}
