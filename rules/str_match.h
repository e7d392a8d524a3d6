/* String alternatives of rule conditions: "text" (exact), or { exact | contains | starts_with |
 * ends_with | regex = "text" }. Comparisons ignore ASCII case; regexes (PCRE2, compiled when
 * parsed) are as written, so (?i) is the operator's choice. */
#ifndef SLUICE_STR_MATCH_H
#define SLUICE_STR_MATCH_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"

struct lua_State;
struct str_match;

/* Alternatives: the list matches a string when any of them does. Zeroed is empty. */
struct str_list {
    struct str_match *items;
    size_t n;
};

/* Parses the alternative at the top of the stack and appends it. Returns 0, or -1 with err
 * starting with what ("when.helo"); the list is str_list_free's to release either way. */
int str_list_add(struct lua_State *L, struct str_list *l, const char *what, char *err,
                 size_t errlen);
bool str_list_match(const struct str_list *l, const char *s);
/* Appends the alternatives as `sluice check` shows them: "a"|contains:"b". */
void str_list_describe(const struct str_list *l, struct buf *out);
void str_list_free(struct str_list *l);

#endif
