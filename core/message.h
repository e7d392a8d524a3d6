/* One message in flight: what the SMTP session learned (its envelope: client, HELO, TLS, MAIL
 * FROM, recipients), the content as received, and the headers that rule actions prepend. Owned
 * by the session until DATA ends, then by the worker job that judges it; freed with
 * message_free(). */
#ifndef SLUICE_MESSAGE_H
#define SLUICE_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "core/buf.h"
#include "core/envelope.h"

struct auth_details;

struct header {
    char *name;
    char *value;
};

struct message {
    /* qid, arrival, the client, MAIL FROM, the recipients (as given in RCPT TO, duplicates
     * removed by the session) and the verdicts (filled on the worker before the rules run) */
    struct envelope env;
    const char *hostname; /* our name, borrowed from the config that judges the message */
    char session_id[24];  /* the SMTP session it came in, for the log; "" when none */

    struct buf body; /* unstuffed content, CRLF line endings, exactly as sent */

    struct auth_details *auth; /* SPF/DKIM/DMARC details (auth/auth.h); NULL when not checked */
    /* How message_free frees auth: set by whoever attaches it (auth_check), so that core/ needs
     * nothing of auth/. The message owns auth once attached. */
    void (*auth_free)(struct auth_details *a);
    char virus_name[128]; /* the signature when verdicts.virus is FAIL, else "" */

    struct header *added; /* prepended by actions; later ones go on top */
    size_t nadded;
    size_t added_cap;
};

/* A new message (the caller owns it) whose envelope is a copy of env, or empty when env is
 * NULL. An envelope without a queue id (the session's, which describes only the client) gets
 * a fresh one, arriving now; one with a queue id (a spooled job's) keeps it and its arrival. */
struct message *message_new(const struct envelope *env);
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
