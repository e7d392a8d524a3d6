/* The receiver's counters: connections, TLS, messages, bytes and refused recipients by reason.
 * Incremented by the server and its sessions (the event loop thread) and by message jobs (worker
 * threads), hence atomics; read by the metrics exporter. */
#ifndef SLUICE_SMTP_STATS_H
#define SLUICE_SMTP_STATS_H

#include <stdatomic.h>

#include "rules/rcpt_judge.h"

struct smtp_stats {
    atomic_ullong connections;
    atomic_ullong connections_refused; /* limits, receipt filters */
    atomic_ullong proxy_refused;       /* closed unheard on PROXY protocol listeners */
    atomic_ullong tls_sessions;
    atomic_ullong messages_accepted;
    atomic_ullong messages_refused;
    atomic_ullong bytes_received;
    atomic_ullong dsn_not_sent; /* partial bounces whose DSN was not sent */
    atomic_ullong rcpt_rejected[REJECT_REASONS];
};

extern struct smtp_stats smtp_stats;
/* The metrics label of a reason ("unknown_user", ...). */
const char *rcpt_reject_reason_name(enum rcpt_reject_reason r);

#endif
