/* The SMTP reply a bounce gives (SES BounceAction: SmtpReplyCode, StatusCode, Message,
 * Sender), validated at config load so that no reply can be malformed or inject lines. */
#ifndef SLUICE_BOUNCE_REPLY_H
#define SLUICE_BOUNCE_REPLY_H

#include <stddef.h>

struct lua_State;

struct bounce_reply {
    char code[4];    /* "550" */
    char status[12]; /* "5.7.1" */
    char *message;
    char *sender; /* NULL: mailer-daemon@<hostname> */
};

/* Checks code [45][0-9][0-9], status [45].[0-9]{1,3}.[0-9]{1,3} of the same class, and a
 * printable one-line message. Returns 0 or -1 with the reason in err. */
int bounce_reply_validate(const char *code, const char *status, const char *message, char *err,
                          size_t errlen);
/* Reads smtp_reply_code, status_code, message and sender from the table at idx, with the given
 * defaults. The caller frees with bounce_reply_free(). */
int bounce_reply_parse(struct lua_State *L, int idx, struct bounce_reply *out,
                       const char *default_code, const char *default_status,
                       const char *default_message, char *err, size_t errlen);
/* "550 5.7.1 message". */
void bounce_reply_format(const struct bounce_reply *b, char *out, size_t outlen);
void bounce_reply_free(struct bounce_reply *b);

#endif
