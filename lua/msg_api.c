/* The msg object: a full userdata holding the message pointer, methods in a locked
 * metatable. GMime's parse is cached per invocation and owned by the sandbox. */
#include "lua/msg_api.h"
#include "core/buf.h"
#include "core/headers.h"
#include "core/message.h"
#include "core/xalloc.h"
#include "lua/sandbox.h"

#include <gmime/gmime.h>
#include <lauxlib.h>
#include <lua.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MSG_MT "sluice.msg"

struct mime_part {
    char *type;     /* "text/plain" */
    char *name;     /* filename, NULL when none */
    int attachment; /* Content-Disposition attachment, or a filename */
    GByteArray *data;
};

struct mime_cache {
    struct mime_part *parts;
    size_t n, cap;
};

struct msg_ud {
    struct message *m;
    struct mime_cache *mime; /* owned by the sandbox */
    int added;               /* headers added by this invocation */
};

/* --- header block ----------------------------------------------------------------------------- */

void push_unfolded(lua_State *L, const char *msg, const struct hdr_field *f)
{
    struct buf v = {0};
    header_unfold(msg, f, &v);
    lua_pushlstring(L, v.data, v.len);
    buf_free(&v);
}

static struct msg_ud *check_msg(lua_State *L)
{
    return luaL_checkudata(L, 1, MSG_MT);
}

/* Added headers first (they sit on top, newest first), then the message's own. */
static int push_header_values(lua_State *L, struct message *m, const char *want, int max)
{
    int n = 0;
    for (size_t i = m->nadded; i-- > 0 && n < max;) {
        if (strcasecmp(m->added[i].name, want) == 0) {
            lua_pushstring(L, m->added[i].value);
            n++;
            if (max > 1)
                lua_rawseti(L, -2, n);
        }
    }
    struct hdr_reader r;
    struct hdr_field f;
    hdr_reader_init(&r, m->body.data, m->body.len);
    while (n < max && hdr_reader_next(&r, &f)) {
        if (header_is(r.msg, &f, want)) {
            push_unfolded(L, r.msg, &f);
            n++;
            if (max > 1)
                lua_rawseti(L, -2, n);
        }
    }
    return n;
}

/* msg:header(name): the first value, or nil. */
static int m_header(lua_State *L)
{
    struct msg_ud *u = check_msg(L);
    const char *want = luaL_checkstring(L, 2);
    if (push_header_values(L, u->m, want, 1) == 0)
        lua_pushnil(L);
    return 1;
}

/* msg:headers(name): every value, in order; msg:headers(): every field as {name=, value=}. */
static int m_headers(lua_State *L)
{
    struct msg_ud *u = check_msg(L);
    if (!lua_isnoneornil(L, 2)) {
        const char *want = luaL_checkstring(L, 2);
        lua_newtable(L);
        push_header_values(L, u->m, want, 1 << 30);
        return 1;
    }
    struct message *m = u->m;
    lua_newtable(L);
    int n = 0;
    for (size_t i = m->nadded; i-- > 0;) {
        lua_createtable(L, 0, 2);
        lua_pushstring(L, m->added[i].name);
        lua_setfield(L, -2, "name");
        lua_pushstring(L, m->added[i].value);
        lua_setfield(L, -2, "value");
        lua_rawseti(L, -2, ++n);
    }
    struct hdr_reader r;
    struct hdr_field f;
    hdr_reader_init(&r, m->body.data, m->body.len);
    while (hdr_reader_next(&r, &f)) {
        lua_createtable(L, 0, 2);
        lua_pushlstring(L, r.msg + f.off, f.name_len);
        lua_setfield(L, -2, "name");
        push_unfolded(L, r.msg, &f);
        lua_setfield(L, -2, "value");
        lua_rawseti(L, -2, ++n);
    }
    return 1;
}

int msg_valid_header(const char *name, const char *value, const char **why)
{
    size_t n = strlen(name);
    if (n == 0 || n > 64 ||
        strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-") != n) {
        *why = "header name must match [A-Za-z0-9-]{1,64}";
        return 0;
    }
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        if ((*p < 0x20 && *p != '\t') || *p == 0x7f) {
            *why = "header value must be one line of printable text";
            return 0;
        }
    }
    if (strlen(value) > 2048) {
        *why = "header value longer than 2048 octets";
        return 0;
    }
    return 1;
}

/* msg:add_header(name, value): prepended to the copies stored by later actions. */
static int m_add_header(lua_State *L)
{
    struct msg_ud *u = check_msg(L);
    size_t vl;
    const char *name = luaL_checkstring(L, 2);
    const char *value = luaL_checklstring(L, 3, &vl);
    const char *why;
    if (strlen(value) != vl || !msg_valid_header(name, value, &why))
        return luaL_error(L, "msg:add_header: %s", strlen(value) != vl ? "NUL in value" : why);
    if (u->added >= MSG_MAX_ADDED)
        return luaL_error(L, "msg:add_header: more than %d headers added", MSG_MAX_ADDED);
    u->added++;
    message_add_header(u->m, name, value);
    return 0;
}

/* msg:remove_header(name): removes every field called name, added or received; returns how
 * many. Copies stored before this keep theirs. */
static int m_remove_header(lua_State *L)
{
    struct msg_ud *u = check_msg(L);
    const char *want = luaL_checkstring(L, 2);
    struct message *m = u->m;
    lua_Integer removed = 0;
    size_t k = 0;
    for (size_t i = 0; i < m->nadded; i++) {
        if (strcasecmp(m->added[i].name, want) == 0) {
            free(m->added[i].name);
            free(m->added[i].value);
            removed++;
        } else {
            m->added[k++] = m->added[i];
        }
    }
    m->nadded = k;

    removed += (lua_Integer)headers_remove_named(&m->body, want);
    lua_pushinteger(L, removed);
    return 1;
}

/* msg:subject(): the Subject with RFC 2047 encoded words decoded (UTF-8), or nil. */
static int m_subject(lua_State *L)
{
    struct msg_ud *u = check_msg(L);
    if (push_header_values(L, u->m, "Subject", 1) == 0) {
        lua_pushnil(L);
        return 1;
    }
    struct sandbox *sb = sandbox_of(L);
    char *dec = g_mime_utils_header_decode_text(NULL, lua_tostring(L, -1));
    if (dec) {
        sandbox_own(sb, dec, g_free);
        lua_pushstring(L, dec);
        sandbox_release(sb, dec);
    }
    return 1;
}

/* msg:from(): the address of every author (each mailbox of each From field, in order), as
 * several results; nil when none. Scripts see every author, as DMARC and the `from`
 * condition do (core/headers.h). */
struct authors {
    lua_State *L;
    int n;
};

static bool push_author(const char *addr, void *arg)
{
    struct authors *a = arg;
    if (*addr && a->n < MSG_MAX_AUTHORS && lua_checkstack(a->L, 1)) {
        lua_pushstring(a->L, addr);
        a->n++;
    }
    return a->n < MSG_MAX_AUTHORS;
}

static int m_from(lua_State *L)
{
    struct msg_ud *u = check_msg(L);
    struct authors a = {L, 0};
    headers_each_author(u->m->body.data, u->m->body.len, push_author, &a);
    if (a.n == 0)
        lua_pushnil(L);
    return a.n ? a.n : 1;
}

static int m_size(lua_State *L)
{
    struct msg_ud *u = check_msg(L);
    lua_pushinteger(L, (lua_Integer)u->m->body.len);
    return 1;
}

/* msg:raw([max]): the message as received, at most max (default and cap MSG_RAW_MAX) bytes;
 * a second result says whether it was cut. */
static int m_raw(lua_State *L)
{
    struct msg_ud *u = check_msg(L);
    lua_Integer max = luaL_optinteger(L, 2, MSG_RAW_MAX);
    if (max < 0 || max > MSG_RAW_MAX)
        max = MSG_RAW_MAX;
    size_t n = u->m->body.len < (size_t)max ? u->m->body.len : (size_t)max;
    lua_pushlstring(L, u->m->body.data ? u->m->body.data : "", n);
    lua_pushboolean(L, n < u->m->body.len);
    return 2;
}

/* --- MIME ----------------------------------------------------------------------------------- */

static void mime_free(void *p)
{
    struct mime_cache *c = p;
    for (size_t i = 0; i < c->n; i++) {
        g_free(c->parts[i].type);
        g_free(c->parts[i].name);
        g_byte_array_unref(c->parts[i].data);
    }
    free(c->parts);
    free(c);
}

/* Decodes the transfer encoding; text parts are also converted to UTF-8 from their charset. */
static GByteArray *decode_part(GMimePart *part, int text)
{
    if (text && GMIME_IS_TEXT_PART(part)) {
        char *t = g_mime_text_part_get_text(GMIME_TEXT_PART(part));
        if (t) {
            return g_byte_array_new_take((guint8 *)t, strlen(t));
        }
    }
    GMimeStream *mem = g_mime_stream_mem_new();
    GMimeDataWrapper *content = g_mime_part_get_content(part);
    if (content)
        g_mime_data_wrapper_write_to_stream(content, mem);
    /* The stream frees its array's data when it owns it, whatever the array's refcount. */
    GByteArray *ba = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
    g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(mem), FALSE);
    g_object_unref(mem);
    return ba;
}

static void collect_part(GMimeObject *parent, GMimeObject *obj, gpointer data)
{
    struct mime_cache *c = data;
    if (!GMIME_IS_PART(obj))
        return;
    GMimePart *part = GMIME_PART(obj);
    GMimeContentType *ct = g_mime_object_get_content_type(obj);
    const char *fname = g_mime_part_get_filename(part);
    struct mime_part p = {0};
    p.type = ct ? g_mime_content_type_get_mime_type(ct) : g_strdup("text/plain");
    p.name = fname ? g_strdup(fname) : NULL;
    p.attachment = g_mime_part_is_attachment(part) || fname;
    p.data = decode_part(part, !p.attachment && ct && g_mime_content_type_is_type(ct, "text", "*"));
    c->parts = xgrow(c->parts, sizeof *c->parts, &c->cap, c->n + 1);
    c->parts[c->n++] = p;
}

static struct mime_cache *mime_of(lua_State *L, struct msg_ud *u)
{
    if (u->mime)
        return u->mime;
    struct mime_cache *c = xcalloc(1, sizeof *c);
    sandbox_own(sandbox_of(L), c, mime_free);
    u->mime = c;
    GMimeStream *st =
        g_mime_stream_mem_new_with_buffer(u->m->body.data ? u->m->body.data : "", u->m->body.len);
    GMimeParser *parser = g_mime_parser_new_with_stream(st);
    GMimeMessage *gm = g_mime_parser_construct_message(parser, NULL);
    if (gm) {
        g_mime_message_foreach(gm, collect_part, c);
        g_object_unref(gm);
    }
    g_object_unref(parser);
    g_object_unref(st);
    return c;
}

/* msg:text(): the decoded text/plain parts (text/html when there is none), joined by a
 * newline; "" when the message has no text. */
static int m_text(lua_State *L)
{
    struct msg_ud *u = check_msg(L);
    struct mime_cache *c = mime_of(L, u);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    const char *want[] = {"text/plain", "text/html"};
    for (int w = 0; w < 2; w++) {
        int found = 0;
        for (size_t i = 0; i < c->n; i++) {
            if (c->parts[i].attachment || g_ascii_strcasecmp(c->parts[i].type, want[w]) != 0)
                continue;
            if (found++)
                luaL_addchar(&b, '\n');
            luaL_addlstring(&b, (const char *)c->parts[i].data->data, c->parts[i].data->len);
        }
        if (found)
            break;
    }
    luaL_pushresult(&b);
    return 1;
}

/* msg:attachments([with_content]): a list of {name, type, size [, content]}. */
static int m_attachments(lua_State *L)
{
    struct msg_ud *u = check_msg(L);
    int content = lua_toboolean(L, 2);
    if (lua_istable(L, 2)) {
        lua_getfield(L, 2, "content");
        content = lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    struct mime_cache *c = mime_of(L, u);
    lua_newtable(L);
    int n = 0;
    for (size_t i = 0; i < c->n; i++) {
        if (!c->parts[i].attachment)
            continue;
        lua_createtable(L, 0, 4);
        if (c->parts[i].name) {
            lua_pushstring(L, c->parts[i].name);
            lua_setfield(L, -2, "name");
        }
        lua_pushstring(L, c->parts[i].type);
        lua_setfield(L, -2, "type");
        lua_pushinteger(L, (lua_Integer)c->parts[i].data->len);
        lua_setfield(L, -2, "size");
        if (content) {
            lua_pushlstring(L, (const char *)c->parts[i].data->data, c->parts[i].data->len);
            lua_setfield(L, -2, "content");
        }
        lua_rawseti(L, -2, ++n);
    }
    return 1;
}

/* --- envelope and the object ------------------------------------------------------------------ */

static void push_envelope(lua_State *L, const struct message *m)
{
    lua_createtable(L, 0, 6);
    lua_pushstring(L, m->env.helo ? m->env.helo : "");
    lua_setfield(L, -2, "helo");
    lua_pushstring(L, m->env.client_ip);
    lua_setfield(L, -2, "client_ip");
    lua_pushboolean(L, m->env.tls);
    lua_setfield(L, -2, "tls");
    lua_pushboolean(L, m->env.smtputf8);
    lua_setfield(L, -2, "smtputf8");
    lua_pushstring(L, m->env.mail_from ? m->env.mail_from : "");
    lua_setfield(L, -2, "mail_from");
    lua_createtable(L, (int)m->env.nrcpts, 0);
    for (size_t i = 0; i < m->env.nrcpts; i++) {
        lua_pushstring(L, m->env.rcpts[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "rcpt_to");
}

/* msg.envelope is built on first access and kept as the userdata's user value. */
static int m_index(lua_State *L)
{
    struct msg_ud *u = check_msg(L);
    const char *key = lua_tostring(L, 2);
    if (key && strcmp(key, "envelope") == 0) {
        if (lua_getiuservalue(L, 1, 1) != LUA_TTABLE) {
            lua_pop(L, 1);
            push_envelope(L, u->m);
            lua_pushvalue(L, -1);
            lua_setiuservalue(L, 1, 1);
        }
        return 1;
    }
    lua_pushvalue(L, 2);
    lua_rawget(L, lua_upvalueindex(1));
    return 1;
}

void msg_api_push(lua_State *L, struct message *m)
{
    struct msg_ud *u = lua_newuserdatauv(L, sizeof *u, 1);
    memset(u, 0, sizeof *u);
    u->m = m;
    if (luaL_newmetatable(L, MSG_MT)) {
        static const luaL_Reg methods[] = {{"header", m_header},
                                           {"headers", m_headers},
                                           {"add_header", m_add_header},
                                           {"remove_header", m_remove_header},
                                           {"subject", m_subject},
                                           {"from", m_from},
                                           {"text", m_text},
                                           {"attachments", m_attachments},
                                           {"size", m_size},
                                           {"raw", m_raw},
                                           {NULL, NULL}};
        luaL_newlib(L, methods);
        lua_pushcclosure(L, m_index, 1);
        lua_setfield(L, -2, "__index");
        lua_pushboolean(L, 0); /* getmetatable(msg) gives false: the methods stay ours */
        lua_setfield(L, -2, "__metatable");
    }
    lua_setmetatable(L, -2);
}
