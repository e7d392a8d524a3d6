/* add_header { name, value }: prepends a header to the copies stored by later actions
 * (SES AddHeaderAction). Both parts are validated at load so no header can be injected. */
#include "actions/action.h"
#include "lua/lua_fields.h"
#include "core/message.h"
#include "core/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct add_header_state {
    char *name;
    char *value;
};

static int valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return 0;
    return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

static int valid_value(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
            return 0;
    return strlen(s) <= 2048;
}

static int add_header_parse(struct lua_State *L, int idx, void **state, char *err, size_t errlen)
{
    static const char *const keys[] = {"name", "value", NULL};
    struct add_header_state *s = xcalloc(1, sizeof *s);
    *state = s;
    if (lf_check_keys(L, idx, "add_header", keys, err, errlen) < 0 ||
        lf_string(L, idx, "name", true, &s->name, err, errlen) < 0 ||
        lf_string(L, idx, "value", true, &s->value, err, errlen) < 0)
        return -1;
    if (!valid_name(s->name)) {
        snprintf(err, errlen, "add_header: name '%s' must match [A-Za-z0-9-]{1,64}", s->name);
        return -1;
    }
    if (!valid_value(s->value)) {
        snprintf(err, errlen,
                 "add_header: value must be printable text without CR/LF (at most 2048 octets)");
        return -1;
    }
    return 0;
}

static enum action_status add_header_run(const void *state, struct action_ctx *ctx)
{
    const struct add_header_state *s = state;
    message_add_header(ctx->msg, s->name, s->value);
    return ACTION_OK;
}

static void add_header_describe(const void *state, struct buf *out)
{
    const struct add_header_state *s = state;
    buf_printf(out, "%s: %s", s->name, s->value);
}

static void add_header_free(void *state)
{
    struct add_header_state *s = state;
    if (!s)
        return;
    free(s->name);
    free(s->value);
    free(s);
}

const struct action_type action_add_header = {
    .name = "add_header",
    .parse = add_header_parse,
    .run = add_header_run,
    .describe = add_header_describe,
    .free_state = add_header_free,
};
