/* The event table a handler receives, shaped like the SES Lambda event so that SES logic ports
 * line by line: event.Records[1].ses.mail and event.Records[1].ses.receipt. */
#ifndef SLUICE_SCRIPT_EVENT_H
#define SLUICE_SCRIPT_EVENT_H

#include <stddef.h>

struct lua_State;
struct message;

struct event_info {
    const struct message *m;
    const size_t *rcpts; /* indices into m->rcpts matched by the rule */
    size_t nrcpts;
    const char *rule;   /* the rule's name */
    const char *script; /* script path, as functionArn */
};

/* Header fields put in mail.headers at most (then headersTruncated is true). */
#define EVENT_MAX_HEADERS 500
#define EVENT_MAX_HEADER_BYTES (64 * 1024)

void event_push(struct lua_State *L, const struct event_info *ev);

#endif
