/* The `msg` object a script handler gets: what the SES Lambda event cannot carry. Reads the
 * message as received (plus headers added by actions), edits its header block, decodes MIME
 * parts with GMime on first use. */
#ifndef SLUICE_MSG_API_H
#define SLUICE_MSG_API_H

#include <stddef.h>

struct lua_State;
struct message;

/* msg:raw() returns at most this many bytes unless asked for fewer. */
#define MSG_RAW_MAX (1024 * 1024)
/* msg:add_header may add at most this many headers per invocation. */
#define MSG_MAX_ADDED 100

/* Pushes the msg userdata for m. m must outlive the state (the state dies with the
 * invocation). */
void msg_api_push(struct lua_State *L, struct message *m);

/* Checks a header that a script adds: name [A-Za-z0-9-]{1,64}, one printable line of at most
 * 2048 octets. Returns 1, or 0 with the reason in *why. */
int msg_valid_header(const char *name, const char *value, const char **why);

/* Iterates the header fields of a message's header block. */
struct header_iter {
    const char *p, *end;
};
void header_iter_init(struct header_iter *it, const char *msg, size_t len);
/* Returns 1 with the field's name, its raw value (after the colon, folding included) and the
 * whole field's extent [start, next); 0 at the end of the header block. */
int header_iter_next(struct header_iter *it, const char **name, size_t *nlen, const char **val,
                     size_t *vlen, const char **start, const char **next);
/* Pushes value with folding undone and surrounding white space removed. */
void push_unfolded(struct lua_State *L, const char *val, size_t vlen);

#endif
