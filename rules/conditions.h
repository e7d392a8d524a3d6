/* Rule conditions (`when` / `unless`): one predicate per field in the manner of OpenSMTPD's
 * ruleset.c, each a list of alternatives. A condition list holds when every condition in it
 * holds; a condition holds when any of its alternatives matches. The fields are one table in
 * conditions.c (name, kind, how the message's value is read): parsing, evaluation, the
 * `sluice check` description and the names in messages all come from it. Parsed (and regexes
 * compiled) at config load; evaluated on worker threads, read-only. */
#ifndef SLUICE_CONDITIONS_H
#define SLUICE_CONDITIONS_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "rules/str_match.h"

struct lua_State;
struct message;

struct cond_field; /* a row of the field table */
struct rcpt_cond;
struct cidr;

/* What is set depends on the field's kind; the rest stays zero (gt, lt: -1). */
struct condition {
    const struct cond_field *field;
    char *key; /* fields keyed by name (header = { ["X-Name"] = ... }): the name */
    struct str_list strs;
    struct rcpt_cond *addrs; /* addresses (sender, from) */
    size_t naddrs;
    bool null_sender; /* the envelope sender: "<>" among the alternatives */
    struct cidr *cidrs;
    size_t ncidrs;
    long long gt, lt; /* a size range: -1 when absent */
    bool flag;        /* a flag (tls) */
    int values[8];    /* verdicts or policies, as enum verdict / enum dmarc_policy */
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
/* The fields of the table, in its order (the order conditions are kept and checked in). */
size_t cond_nfields(void);
const char *cond_field_name(size_t i);
/* Writes how messages name c in list ("when", "unless"): "when.subject",
 * "when.header[\"X-Name\"]" (parse errors, `sluice test`'s reasons). Returns the full length,
 * as snprintf does. */
int cond_label(const struct condition *c, const char *list, char *out, size_t len);
/* Appends "field=alternatives; ..." for `sluice check`. */
void cond_list_describe(const struct cond_list *l, struct buf *out);

#endif
