/* Sending a message to another SMTP server with libetpan: used by the relay action and for
 * DSNs. Blocking; runs on worker threads only. */
#ifndef SLUICE_SMTP_CLIENT_H
#define SLUICE_SMTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include "core/envelope.h"

/* none: plain; opportunistic: STARTTLS when offered, any certificate; require: STARTTLS or
 * nothing, any certificate; verify: STARTTLS with a certificate valid for the host. */
enum smtp_tls { SMTP_TLS_NONE, SMTP_TLS_OPPORTUNISTIC, SMTP_TLS_REQUIRE, SMTP_TLS_VERIFY };

#define SMTP_SEND_TEMPFAIL (-1) /* try again later */
#define SMTP_SEND_REJECTED (-2) /* a 5xx: retrying will not help */

/* The name sluice gives in EHLO/HELO (the config's hostname), for every message it sends from
 * now on: DSNs, relays, DMARC reports. Thread-safe; set at load and on every reload. */
void smtp_client_set_helo(const char *name);

/* What an envelope asks of the next hop beyond addresses: SMTPUTF8 (RFC 6531) and the DSN
 * parameters (RFC 3461). rcpt_dsn, when not NULL, is parallel to the recipients. */
struct smtp_send_ext {
    bool smtputf8;
    enum dsn_ret ret;
    const char *envid;
    const struct rcpt_dsn *rcpt_dsn;
};

/* Sends data (a CRLF message, not dot-stuffed) from mail_from ("" for <>) to rcpts through
 * host:port, with x's parameters (NULL: none; SMTPUTF8 refused as SMTP_SEND_REJECTED by a hop
 * that does not offer it, DSN parameters left out for one that does not offer DSN). ca_file: the
 * CAs for tls = verify (NULL: the system's). Logs the TLS the connection had (verified, not
 * verified, none) at info level. Returns 0, SMTP_SEND_TEMPFAIL or SMTP_SEND_REJECTED with the
 * reason (the server's reply when there is one) in err. */
int smtp_send(const char *host, int port, enum smtp_tls tls, const char *ca_file,
              const char *mail_from, char *const *rcpts, size_t n, const struct smtp_send_ext *x,
              const char *data, size_t len, long timeout_s, char *err, size_t errlen);

/* Return-Path belongs to final delivery (RFC 5321 4.4): a message sluice passes on, by SMTP or
 * to the LMTP server that delivers it, goes without the one sluice put first. Returns where
 * data starts after it and shortens *len. */
const char *smtp_skip_return_path(const char *data, size_t *len);

#endif
