/* libFuzzer target: every consumer of header fields is held to the one reader (core/headers.h).
 * Any bytes are a message. For each input:
 * - the field list auth/ builds (and feeds to libopendkim) tiles the header section without
 *   gaps, and its end is where every reader puts the body;
 * - the From values auth/ extracts for DMARC (header_is/header_value over headers_parse), the
 *   ones rule conditions read (header_find) and the ones the Lua API returns
 *   (msg:headers("From") in a real sandbox) are the same, in the same order;
 * - the authors the `from` condition walks (headers_each_author) are msg:from()'s, and a
 *   `from` condition written as the first (and the last) author holds;
 * - after removing every From field (the forged-header path) no reader sees one, and the
 *   other fields are untouched;
 * - a header added by an action still yields a trace block. */
#include "core/address.h"
#include "core/buf.h"
#include "core/headers.h"
#include "core/message.h"
#include "lua/msg_api.h"
#include "lua/sandbox.h"
#include "rules/conditions.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_AUTHORS MSG_MAX_AUTHORS

struct strs {
    char *v[MAX_AUTHORS];
    size_t n;
};

static bool collect(const char *addr, void *arg)
{
    struct strs *s = arg;
    if (*addr && s->n < MAX_AUTHORS)
        s->v[s->n++] = strdup(addr);
    return s->n < MAX_AUTHORS;
}

static void strs_free(struct strs *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    s->n = 0;
}

/* The From values as auth/dmarc.c reads them; also checks the list's layout. */
static size_t auth_froms(const char *msg, size_t len, struct strs *out)
{
    size_t nfrom = 0;
    struct hdr_list h;
    headers_parse(msg, len, &h);
    if (h.body_off > len || h.body_off != headers_length(msg, len))
        abort();
    size_t at = 0;
    for (size_t i = 0; i < h.n; i++) {
        const struct hdr_field *f = &h.f[i];
        if (f->off != at || f->len == 0 || f->value_off <= f->off + f->name_len ||
            f->value_off > f->off + f->len || memchr(msg + f->off, '\0', f->len))
            abort();
        at = f->off + f->len;
        if (header_is(msg, f, "From") && nfrom++ < MAX_AUTHORS)
            out->v[out->n++] = header_value(msg, f);
    }
    /* After the last field: nothing, the empty line, or the body's first line. */
    if (at > h.body_off || (h.body_off - at != 0 && h.body_off - at != 1 && h.body_off - at != 2))
        abort();
    free(h.f);
    return nfrom;
}

static void same(const struct strs *a, const struct strs *b)
{
    if (a->n != b->n)
        abort();
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->v[i], b->v[i]) != 0)
            abort();
}

/* Table at the top of L into out (popped). */
static void take_table(lua_State *L, struct strs *out)
{
    lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
    for (lua_Integer i = 1; i <= n && out->n < MAX_AUTHORS; i++) {
        lua_rawgeti(L, -1, i);
        out->v[out->n++] = strdup(lua_tostring(L, -1));
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

static const char PROBE[] = "local v = {}\n"
                            "for i, x in ipairs(msg:headers('From')) do\n"
                            "  if i <= 100 then v[i] = x end\n"
                            "end\n"
                            "return v, { msg:from() }\n";

static void lua_froms(struct message *m, struct strs *values, struct strs *authors)
{
    struct sandbox sb;
    if (sandbox_open(&sb, 64 << 20, 10000, "probe.lua") < 0)
        abort();
    msg_api_push(sb.L, m);
    lua_setglobal(sb.L, "msg");
    char err[256];
    if (luaL_loadbufferx(sb.L, PROBE, sizeof PROBE - 1, "@probe.lua", "t") != LUA_OK)
        abort();
    sandbox_start(&sb);
    if (sandbox_pcall(&sb, 0, 2, err, sizeof err) != LUA_OK)
        abort();
    take_table(sb.L, authors);
    take_table(sb.L, values);
    sandbox_close(&sb);
}

/* Whether `when = { from = addr }` holds for m; -1 when addr is no valid condition. */
static int from_condition(const struct message *m, const char *addr)
{
    lua_State *L = luaL_newstate();
    lua_createtable(L, 0, 1);
    lua_pushstring(L, addr);
    lua_setfield(L, -2, "from");
    struct cond_list cl = {0};
    char err[256];
    int out = -1;
    if (cond_list_parse(L, -1, "when", &cl, err, sizeof err) == 0) {
        out = cond_list_all(&cl, m, NULL);
        cond_list_free(&cl);
    }
    lua_close(L);
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *msg = (const char *)data;
    struct message *m = message_new(NULL);
    m->hostname = "mx.example.test";
    buf_append(&m->body, data, size);

    struct strs from_auth = {0}, from_cond = {0}, from_lua = {0};
    size_t nfrom = auth_froms(msg, size, &from_auth);
    struct buf v = {0};
    for (int nth = 0; nth < MAX_AUTHORS && header_find(msg, size, "From", nth, &v); nth++) {
        from_cond.v[from_cond.n++] = strdup(buf_cstr(&v));
        buf_reset(&v);
    }
    buf_free(&v);
    struct strs authors = {0}, authors_lua = {0};
    headers_each_author(msg, size, collect, &authors);
    lua_froms(m, &from_lua, &authors_lua);
    same(&from_auth, &from_cond);
    same(&from_auth, &from_lua);
    same(&authors, &authors_lua);

    /* The first and the last author, each written as a `from` condition. */
    for (size_t i = 0; i < authors.n; i = i + 1 < authors.n - 1 ? authors.n - 1 : i + 1)
        if (address_valid(authors.v[i]) && from_condition(m, authors.v[i]) == 0)
            abort();

    /* The forged-header path: From fields removed, nothing else. */
    struct buf copy = {0};
    buf_append(&copy, data, size);
    if (headers_remove_named(&copy, "From") != nfrom)
        abort();
    struct buf none = {0};
    if (header_find(copy.data, copy.len, "From", 0, &none))
        abort();
    struct hdr_list before, after;
    headers_parse(msg, size, &before);
    headers_parse(copy.data, copy.len, &after);
    size_t k = 0;
    for (size_t i = 0; i < before.n; i++) {
        if (header_is(msg, &before.f[i], "From"))
            continue;
        if (k >= after.n || after.f[k].len != before.f[i].len ||
            memcmp(copy.data + after.f[k].off, msg + before.f[i].off, before.f[i].len) != 0)
            abort();
        k++;
    }
    if (k != after.n || size - before.body_off != copy.len - after.body_off)
        abort();
    free(before.f);
    free(after.f);
    buf_free(&none);
    buf_free(&copy);

    /* The add-header path. */
    message_add_header(m, "X-Fuzz", "value");
    struct buf head = {0};
    message_trace_headers(m, "user@example.test", &head);
    if (head.len == 0)
        abort();
    buf_free(&head);
    message_free(m);
    strs_free(&from_auth);
    strs_free(&from_cond);
    strs_free(&from_lua);
    strs_free(&authors);
    strs_free(&authors_lua);
    return 0;
}
