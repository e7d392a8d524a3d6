/* Rule conditions (`when` / `unless`): one predicate per field in the manner of OpenSMTPD's
 * ruleset.c, each a list of alternatives. A condition list holds when every condition in it
 * holds; a condition holds when any of its alternatives matches. Parsed (and regexes compiled)
 * at config load; evaluated on worker threads, read-only. */
#ifndef SLUICE_CONDITIONS_H
#define SLUICE_CONDITIONS_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"

struct lua_State;
struct message;

enum cond_field {
    COND_SENDER,
    COND_HELO,
    COND_FROM,
    COND_HEADER,
    COND_SUBJECT,
    COND_SIZE,
    COND_CLIENT_IP,
    COND_TLS,
    COND_TLS_VERSION,
    COND_SPF,
    COND_DKIM,
    COND_DMARC,
    COND_SPAM,
    COND_VIRUS,
    COND_DMARC_POLICY,
};

struct str_match;
struct rcpt_cond;
struct cidr;

struct condition {
    enum cond_field field;
    char *header; /* COND_HEADER: the header name */
    struct str_match *strs;
    size_t nstrs;
    struct rcpt_cond *addrs; /* sender, from */
    size_t naddrs;
    bool null_sender; /* sender: "<>" among the alternatives */
    struct cidr *cidrs;
    size_t ncidrs;
    long long gt, lt; /* size: -1 when absent */
    bool flag;        /* tls */
    int values[8];    /* verdicts / policies */
    size_t nvalues;
};

struct cond_list {
    struct condition *items;
    size_t n;
};

/* Parses the table at stack index idx (what = "when" or "unless", for messages). */
int cond_list_parse(struct lua_State *L, int idx, const char *what, struct cond_list *out,
                    char *err, size_t errlen);
void cond_list_free(struct cond_list *l);
/* Returns true when every condition holds; otherwise false and *failed names the first one
 * that did not (may be NULL). */
bool cond_list_all(const struct cond_list *l, const struct message *m,
                   const struct condition **failed);
/* Returns true when any condition holds; *hit names it. */
bool cond_list_any(const struct cond_list *l, const struct message *m,
                   const struct condition **hit);
const char *cond_field_name(enum cond_field f);
/* Appends "field=alternatives; ..." for `sluice check`. */
void cond_list_describe(const struct cond_list *l, struct buf *out);

#endif
