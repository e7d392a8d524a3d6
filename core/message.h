/* One message in flight: what the SMTP session learned (client, HELO, envelope, TLS), the
 * content as received, and the headers that rule actions prepend. Owned by the session until
 * DATA ends, then by the worker job that judges it; freed with message_free(). */
#ifndef SLUICE_MESSAGE_H
#define SLUICE_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "core/buf.h"
#include "core/verdict.h"

struct auth_details;

struct header {
    char *name;
    char *value;
};

struct message {
    char qid[24];
    time_t arrival;
    const char *hostname; /* our name, borrowed from the config that judges the message */

    char client_ip[64];
    int client_port;
    char *client_rdns; /* NULL when unknown */
    char *helo;
    bool esmtp;
    bool tls;
    char tls_version[32];
    char tls_cipher[96];

    char *mail_from; /* "" for the null sender <> */
    char **rcpts;    /* as given in RCPT TO, duplicates removed */
    size_t nrcpts;
    size_t rcpts_cap;

    struct buf body; /* unstuffed content, CRLF line endings, exactly as sent */

    struct verdicts verdicts;  /* filled on the worker before the rules run */
    struct auth_details *auth; /* SPF/DKIM/DMARC details (auth/auth.h); NULL when not checked */
    /* How message_free frees auth: set by whoever attaches it (auth_check), so that core/ needs
     * nothing of auth/. The message owns auth once attached. */
    void (*auth_free)(struct auth_details *a);
    char virus_name[128]; /* the signature when verdicts.virus is FAIL, else "" */

    struct header *added; /* prepended by actions; later ones go on top */
    size_t nadded;
    size_t added_cap;
};

struct message *message_new(void);
void message_free(struct message *m);
void message_add_rcpt(struct message *m, const char *addr);
void message_add_header(struct message *m, const char *name, const char *value);
/* Appends the header block a stored copy for rcpt (NULL: a copy for all recipients, with no
 * "for" clause) starts with: Return-Path, Received, then
 * the headers added by actions, newest first (each prepended on top of the one before). */
void message_trace_headers(const struct message *m, const char *rcpt, struct buf *out);
/* Writes a fresh queue id into qid (at least 17 bytes). Thread-safe. */
void message_make_qid(char *qid, size_t len);

#endif
