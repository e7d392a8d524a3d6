/* An LMTP client (RFC 2033) for final delivery into a mail store such as Dovecot: LHLO,
 * PIPELINING, one RCPT per recipient and one reply per accepted recipient after DATA, over a
 * pool of connections to one target that worker threads share. Blocking; worker threads only.
 *
 * libetpan's LMTP support is lockstep and keeps only the numeric code of each recipient's
 * reply, losing the enhanced status ("552 5.2.2 quota") the SMTP client is owed: hence this. */
#ifndef SLUICE_LMTP_CLIENT_H
#define SLUICE_LMTP_CLIENT_H

#include <stddef.h>

/* One recipient's answer from a delivery that answers per recipient. */
struct rcpt_reply {
    int code; /* 250, 452, 552, ... */
    char text[256];
};

struct lmtp_pool;

/* A pool for the Unix socket at path (host NULL) or the numeric "ip:port" in host. lhlo is
 * the name sluice gives in LHLO. Returns NULL with the reason in err for a bad address. */
struct lmtp_pool *lmtp_pool_new(const char *path, const char *host, const char *lhlo, char *err,
                                size_t errlen);
/* Closes every idle connection; no delivery may be in flight. */
void lmtp_pool_free(struct lmtp_pool *p);
/* "unix:/run/dovecot/lmtp" or "127.0.0.1:24". */
const char *lmtp_pool_target(const struct lmtp_pool *p);

/* Delivers data (CRLF lines, not dot-stuffed) from mail_from ("" for <>) to rcpts[0..n) in one
 * LMTP transaction and fills replies[i] for each recipient: the server's reply (first line,
 * printable, with an enhanced status), or one made up here ("451 4.4.1 ...") when the
 * transaction failed before the server gave one. When the transaction as a whole
 * failed (connect, garbage, closed connection, timeout), err says what happened and every
 * recipient without a final answer gets a 451. A pooled connection that turns out broken
 * before the message was sent is replaced by a fresh one, once. timeout_ms bounds each wait
 * for the server. */
void lmtp_send(struct lmtp_pool *p, const char *mail_from, char *const *rcpts, size_t n,
               const char *data, size_t len, long long timeout_ms, struct rcpt_reply *replies,
               char *err, size_t errlen);

#endif
