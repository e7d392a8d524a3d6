/* What the SMTP session learned about one message before its content: queue id, arrival,
 * the client (address, port, rDNS, HELO, ESMTP, TLS), MAIL FROM and the recipients, and the
 * verdicts computed for it. One struct, meant to be embedded wherever a message's envelope
 * travels (the message in flight, the spool job), with one JSON form.
 *
 * Ownership: an envelope owns its strings (client_rdns, helo, mail_from, dsn_envid, rcpts and
 * each rcpts[i], rcpt_dsn and each rcpt_dsn[i].orcpt); envelope_free() frees them but not the
 * struct itself, which is embedded. */
#ifndef SLUICE_ENVELOPE_H
#define SLUICE_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "core/verdict.h"

struct json_t;

/* RFC 3461 RET= of MAIL FROM. */
enum dsn_ret { DSN_RET_UNSPECIFIED, DSN_RET_FULL, DSN_RET_HDRS };

/* RFC 3461 NOTIFY= of RCPT TO, as bits; 0 when the client gave none. */
enum {
    DSN_NOTIFY_NEVER = 1,
    DSN_NOTIFY_SUCCESS = 2,
    DSN_NOTIFY_FAILURE = 4,
    DSN_NOTIFY_DELAY = 8,
};

/* What RFC 3461 keeps per recipient. */
struct rcpt_dsn {
    unsigned notify; /* DSN_NOTIFY_* bits, 0 when absent */
    char *orcpt;     /* "addr-type;address" (xtext decoded), NULL when absent */
};

struct envelope {
    char qid[24];
    time_t arrival;

    char client_ip[64];
    int client_port;
    char *client_rdns; /* NULL when unknown */
    char *helo;        /* NULL before HELO/EHLO */
    bool esmtp;
    bool tls;
    char tls_version[32];
    char tls_cipher[96];

    char *mail_from; /* "" for the null sender <>; NULL before MAIL FROM */
    char **rcpts;    /* as given in RCPT TO */
    size_t nrcpts;
    size_t rcpts_cap;
    struct rcpt_dsn *rcpt_dsn; /* parallel to rcpts */
    size_t rcpt_dsn_cap;

    bool smtputf8;    /* MAIL FROM ... SMTPUTF8 (RFC 6531) */
    enum dsn_ret ret; /* MAIL FROM ... RET= */
    char *dsn_envid;  /* MAIL FROM ... ENVID= (xtext decoded), NULL when absent */

    struct verdicts verdicts;
};

/* Zeroes e: every string NULL, no recipients, verdicts UNSET. */
void envelope_init(struct envelope *e);
/* Frees what e owns and leaves it as envelope_init() does. */
void envelope_free(struct envelope *e);
/* Makes dst (not yet initialised, or freed) a deep copy of src. */
void envelope_copy(struct envelope *dst, const struct envelope *src);
/* Appends a copy of addr to the recipients, without DSN parameters. */
void envelope_add_rcpt(struct envelope *e, const char *addr);
/* Appends a copy of addr with its NOTIFY bits and ORCPT (copied; NULL for none). */
void envelope_add_rcpt_dsn(struct envelope *e, const char *addr, unsigned notify,
                           const char *orcpt);
/* Appends a copy of src's recipient i, with its DSN parameters, to dst. */
void envelope_copy_rcpt(struct envelope *dst, const struct envelope *src, size_t i);
/* True unless recipient i's NOTIFY (RFC 3461 §4.1) excludes failure DSNs (NEVER, or a list
 * without FAILURE); absent NOTIFY means the default, FAILURE. */
bool envelope_rcpt_wants_failure_dsn(const struct envelope *e, size_t i);
/* Keeps the recipients whose keep[i] is true, in order, and frees the others. */
void envelope_keep_rcpts(struct envelope *e, const bool *keep);

/* The envelope as a new JSON object (caller owns the reference): qid, arrival, client_ip,
 * client_port, client_rdns (null when unknown), helo (null when none), esmtp, tls,
 * tls_version, tls_cipher, mail_from, rcpts (array), verdicts (object of verdict names),
 * smtputf8, dsn_ret ("FULL", "HDRS" or null), dsn_envid (null when none) and rcpt_dsn (array
 * parallel to rcpts of {notify: bits, orcpt: string or null}). */
struct json_t *envelope_to_json(const struct envelope *e);
/* Fills e (not yet initialised) from o. Returns 0, or -1 with err naming the first missing or
 * mistyped field ("envelope field 'helo' is missing"); e is then left initialised and empty.
 * The SMTPUTF8 and DSN fields are optional (job files written before them): false, none. */
int envelope_from_json(struct envelope *e, const struct json_t *o, char *err, size_t errlen);

#endif
