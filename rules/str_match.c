/* String alternatives: parsing from the config, matching, describing. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "rules/str_match.h"
#include "lua/lua_fields.h"
#include "core/xalloc.h"

#include <lauxlib.h>
#include <lua.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum str_op { OP_EXACT, OP_CONTAINS, OP_STARTS, OP_ENDS, OP_REGEX };
static const char *const op_names[] = {"exact", "contains", "starts_with", "ends_with", "regex"};

struct str_match {
    enum str_op op;
    char *text;
    pcre2_code *re;
};

/* One string alternative at the top of the stack: "text" or { op = "text" }. */
static int parse_str_alt(lua_State *L, const char *what, struct str_match *sm, char *err,
                         size_t errlen)
{
    if (lua_type(L, -1) == LUA_TSTRING) {
        sm->op = OP_EXACT;
        sm->text = xstrdup(lua_tostring(L, -1));
        return 0;
    }
    if (!lua_istable(L, -1)) {
        snprintf(err, errlen,
                 "%s: expected a string or { contains|starts_with|ends_with|regex = "
                 "\"...\" }, got %s",
                 what, luaL_typename(L, -1));
        return -1;
    }
    int t = lua_gettop(L);
    static const char *const keys[] = {"exact",     "contains", "starts_with",
                                       "ends_with", "regex",    NULL};
    if (lf_check_keys(L, t, what, keys, err, errlen) < 0)
        return -1;
    int found = 0;
    for (int op = 0; op < 5; op++) {
        char *v = NULL;
        if (lf_string(L, t, op_names[op], false, &v, err, errlen) < 0)
            return -1;
        if (!v)
            continue;
        if (found++) {
            free(v);
            snprintf(err, errlen, "%s: give one operator per alternative", what);
            return -1;
        }
        sm->op = (enum str_op)op;
        sm->text = v;
    }
    if (!found) {
        snprintf(err, errlen, "%s: empty string operator table", what);
        return -1;
    }
    if (sm->op == OP_REGEX) {
        int code;
        PCRE2_SIZE off;
        sm->re = pcre2_compile((PCRE2_SPTR)sm->text, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &code, &off,
                               NULL);
        if (!sm->re) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(code, msg, sizeof msg);
            snprintf(err, errlen, "%s: bad regex \"%s\" at offset %zu: %s", what, sm->text,
                     (size_t)off, (char *)msg);
            return -1;
        }
    }
    return 0;
}

int str_list_add(lua_State *L, struct str_list *l, const char *what, char *err, size_t errlen)
{
    l->items = xrealloc(l->items, (l->n + 1) * sizeof *l->items);
    memset(&l->items[l->n], 0, sizeof *l->items);
    int rc = parse_str_alt(L, what, &l->items[l->n], err, errlen);
    l->n++; /* counted even on error so free releases it */
    return rc;
}

static bool str_match_one(const struct str_match *sm, const char *s)
{
    size_t sl = strlen(s), tl = strlen(sm->text);
    switch (sm->op) {
    case OP_EXACT:
        return strcasecmp(s, sm->text) == 0;
    case OP_CONTAINS:
        return strcasestr(s, sm->text) != NULL;
    case OP_STARTS:
        return sl >= tl && strncasecmp(s, sm->text, tl) == 0;
    case OP_ENDS:
        return sl >= tl && strcasecmp(s + sl - tl, sm->text) == 0;
    case OP_REGEX: {
        pcre2_match_data *md = pcre2_match_data_create_from_pattern(sm->re, NULL);
        int rc = pcre2_match(sm->re, (PCRE2_SPTR)s, sl, 0, 0, md, NULL);
        pcre2_match_data_free(md);
        return rc >= 0;
    }
    }
    return false;
}

bool str_list_match(const struct str_list *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++)
        if (str_match_one(&l->items[i], s))
            return true;
    return false;
}

void str_list_describe(const struct str_list *l, struct buf *out)
{
    for (size_t j = 0; j < l->n; j++)
        buf_printf(out, "%s%s%s\"%s\"", j ? "|" : "",
                   l->items[j].op == OP_EXACT ? "" : op_names[l->items[j].op],
                   l->items[j].op == OP_EXACT ? "" : ":", l->items[j].text);
}

void str_list_free(struct str_list *l)
{
    for (size_t j = 0; j < l->n; j++) {
        free(l->items[j].text);
        pcre2_code_free(l->items[j].re);
    }
    free(l->items);
    l->items = NULL;
    l->n = 0;
}
