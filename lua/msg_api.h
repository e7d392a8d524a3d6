/* The `msg` object a script handler gets: what the SES Lambda event cannot carry. Reads the
 * message as received (plus headers added by actions), edits its header block, decodes MIME
 * parts with GMime on first use. */
#ifndef SLUICE_MSG_API_H
#define SLUICE_MSG_API_H

#include <stddef.h>

struct lua_State;
struct message;
struct hdr_field;

/* msg:raw() returns at most this many bytes unless asked for fewer. */
#define MSG_RAW_MAX (1024 * 1024)
/* msg:add_header may add at most this many headers per invocation. */
#define MSG_MAX_ADDED 100
/* msg:from() returns at most this many addresses. */
#define MSG_MAX_AUTHORS 100

/* Pushes the msg userdata for m. m must outlive the state (the state dies with the
 * invocation). */
void msg_api_push(struct lua_State *L, struct message *m);

/* Checks a header that a script adds: name [A-Za-z0-9-]{1,64}, one printable line of at most
 * 2048 octets. Returns 1, or 0 with the reason in *why. */
int msg_valid_header(const char *name, const char *value, const char **why);

/* Pushes the unfolded value of field f of msg (core/headers.h). */
void push_unfolded(struct lua_State *L, const char *msg, const struct hdr_field *f);

#endif
