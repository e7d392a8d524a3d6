/* What the SMTP session learned about one message before its content: queue id, arrival,
 * the client (address, port, rDNS, HELO, ESMTP, TLS), MAIL FROM and the recipients, and the
 * verdicts computed for it. One struct, meant to be embedded wherever a message's envelope
 * travels (the message in flight, the spool job), with one JSON form.
 *
 * Ownership: an envelope owns its strings (client_rdns, helo, mail_from, rcpts and each
 * rcpts[i]); envelope_free() frees them but not the struct itself, which is embedded. */
#ifndef SLUICE_ENVELOPE_H
#define SLUICE_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "core/verdict.h"

struct json_t;

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

    struct verdicts verdicts;
};

/* Zeroes e: every string NULL, no recipients, verdicts UNSET. */
void envelope_init(struct envelope *e);
/* Frees what e owns and leaves it as envelope_init() does. */
void envelope_free(struct envelope *e);
/* Makes dst (not yet initialised, or freed) a deep copy of src. */
void envelope_copy(struct envelope *dst, const struct envelope *src);
/* Appends a copy of addr to the recipients. */
void envelope_add_rcpt(struct envelope *e, const char *addr);

/* The envelope as a new JSON object (caller owns the reference): qid, arrival, client_ip,
 * client_port, client_rdns (null when unknown), helo (null when none), esmtp, tls,
 * tls_version, tls_cipher, mail_from, rcpts (array), verdicts (object of verdict names). */
struct json_t *envelope_to_json(const struct envelope *e);
/* Fills e (not yet initialised) from o. Returns 0, or -1 with err naming the first missing or
 * mistyped field ("envelope field 'helo' is missing"); e is then left initialised and empty. */
int envelope_from_json(struct envelope *e, const struct json_t *o, char *err, size_t errlen);

#endif
