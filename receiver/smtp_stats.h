/* The receiver's counters: connections, TLS, messages, bytes, refused MAIL commands and
 * recipients by reason, and the time from the end of DATA to its reply.
 * Incremented by the server and its sessions (the event loop thread) and by message jobs (worker
 * threads), hence atomics; read by the metrics exporter. */
#ifndef SLUICE_SMTP_STATS_H
#define SLUICE_SMTP_STATS_H

#include <stdatomic.h>

#include "core/histogram.h"
#include "rules/rcpt_judge.h"

/* Why MAIL FROM is refused (sluice_smtp_mail_rejected_total{reason}). */
enum mail_reject_reason {
    MAIL_REJECT_SIZE,   /* SIZE= above max_message_size (552 5.3.4) */
    MAIL_REJECT_SYNTAX, /* the command does not parse (501) */
    MAIL_REJECT_REASONS
};

/* STARTTLS handshakes by protocol version (sluice_tls_handshakes_total{version}); the server
 * offers TLS 1.2 and later. */
enum tls_version_slot { TLS_SLOT_12, TLS_SLOT_13, TLS_SLOT_OTHER, TLS_SLOTS };
/* Why a handshake failed (sluice_tls_handshake_failures_total{reason}). */
enum tls_failure {
    TLS_FAIL_ERROR,   /* a TLS protocol error (no shared version or cipher, garbage, alert) */
    TLS_FAIL_CLOSED,  /* the client closed the connection during the handshake */
    TLS_FAIL_TIMEOUT, /* not done within command_timeout */
    TLS_FAILS
};

struct smtp_stats {
    atomic_ullong connections;
    atomic_ullong connections_refused; /* limits, receipt filters */
    atomic_ullong proxy_refused;       /* closed unheard on PROXY protocol listeners */
    atomic_ullong tls_sessions;
    atomic_ullong tls_handshakes[TLS_SLOTS];
    atomic_ullong tls_failures[TLS_FAILS];
    atomic_ullong messages_accepted;
    atomic_ullong messages_refused;
    atomic_ullong bytes_received;
    atomic_ullong dsn_not_sent; /* partial bounces whose DSN was not sent */
    atomic_ullong rcpt_rejected[REJECT_REASONS];
    atomic_ullong mail_rejected[MAIL_REJECT_REASONS];
    /* End of DATA (the final dot read) to the reply, for messages handed to the rules. */
    struct histogram data_reply;
};

extern struct smtp_stats smtp_stats;
/* The metrics label of a reason ("unknown_user", ...). */
const char *rcpt_reject_reason_name(enum rcpt_reject_reason r);
const char *mail_reject_reason_name(enum mail_reject_reason r);
/* Counts a finished handshake of version (OpenSSL's name, "TLSv1.3"). */
void smtp_stats_tls_handshake(const char *version);
/* "TLSv1.2", "TLSv1.3", "other"; "error", "closed", "timeout". */
const char *tls_slot_name(enum tls_version_slot v);
const char *tls_failure_name(enum tls_failure f);

#endif
