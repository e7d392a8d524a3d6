/* lua { script, fn = "handler", invocation = "sync", timeout_ms = 1000, memory_kb = 16384 }:
 * SES's "invoke Lambda function" action, run locally in a sandbox (lua/sandbox.h).
 *
 * The script is compiled once at config load (a syntax error is a config error) and kept as
 * bytecode. Every invocation gets a fresh state on the worker thread that judges the message:
 * nothing is shared between concurrent messages and nothing a handler leaves behind (globals,
 * upvalues, metatables) reaches the next message. Measured by bench/lua_invoke.c, a fresh state
 * plus a trivial handler costs well under the 50 us budget, so no state cache is kept.
 *
 * The handler gets (event, msg) and returns a disposition: nil or "CONTINUE", "STOP_RULE",
 * "STOP_RULE_SET" (any case), or { disposition, bounce = {smtp_reply_code, status_code,
 * message}, add_headers }. A runtime error, timeout, memory kill or bad return value fails the
 * action with the script's file:line (the rule then counts PublishFailure). */
#include "actions/action.h"
#include "actions/bounce_reply.h"
#include "actions/action_dsl.h"
#include "lua/lua_fields.h"
#include "core/log.h"
#include "core/message.h"
#include "delivery/maildir.h"
#include "core/xalloc.h"
#include "lua/event.h"
#include "lua/msg_api.h"
#include "lua/sandbox.h"
#include "lua/stdlib.h"

#include <errno.h>
#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SCRIPT_MAX_BYTES (1024 * 1024)

struct lua_script {
    char *path; /* resolved against the config file's directory */
    char *fn;
    int timeout_ms;
    int async;       /* invocation = "async": run after acceptance, from the spool */
    size_t memory;   /* bytes */
    struct buf code; /* bytecode we dumped ourselves (never operator-supplied bytecode) */
};

struct added {
    char *name, *value;
};

/* What one invocation produced; the arrays are owned by the sandbox. */
struct invocation {
    const struct lua_script *s;
    struct action_ctx *ctx; /* NULL at config load */
    struct script_origin origin;
    enum action_status status;
    char reply[512]; /* bounce, "" when none */
    struct added *headers;
    size_t nheaders, headers_cap;
};

/* --- the result ---------------------------------------------------------------------------------
 */

static int parse_disposition(const char *s, enum action_status *out)
{
    if (strcasecmp(s, "CONTINUE") == 0)
        *out = ACTION_OK;
    else if (strcasecmp(s, "STOP_RULE") == 0)
        *out = ACTION_STOP_RULE;
    else if (strcasecmp(s, "STOP_RULE_SET") == 0)
        *out = ACTION_STOP_RULE_SET;
    else
        return -1;
    return 0;
}

/* t[key] from the table at idx without metamethods; pushes it and returns its type. */
static int raw_field(lua_State *L, int idx, const char *key)
{
    lua_pushstring(L, key);
    return lua_rawget(L, idx);
}

/* A string field (numbers accepted for codes), or dflt when absent; pushes the field. */
static const char *bounce_field(lua_State *L, int t, const char *key, const char *dflt,
                                const char *where)
{
    int type = raw_field(L, t, key);
    const char *v = dflt;
    if (type == LUA_TSTRING || type == LUA_TNUMBER)
        v = lua_tostring(L, -1);
    else if (type != LUA_TNIL)
        luaL_error(L, "%s: bad return value: bounce.%s must be a string, got %s", where, key,
                   luaL_typename(L, -1));
    return v; /* left on the stack: a number converted to a string lives only there */
}

static void free_added(void *p)
{
    struct invocation *inv = p;
    for (size_t i = 0; i < inv->nheaders; i++) {
        free(inv->headers[i].name);
        free(inv->headers[i].value);
    }
    free(inv->headers);
    inv->headers = NULL;
    inv->nheaders = 0;
}

static void add_result_header(lua_State *L, struct invocation *inv, int name_idx, int value_idx,
                              const char *where)
{
    if (lua_type(L, name_idx) != LUA_TSTRING || lua_type(L, value_idx) != LUA_TSTRING)
        luaL_error(L,
                   "%s: bad return value: add_headers entries must be name = \"value\" or "
                   "{ name = ..., value = ... } strings",
                   where);
    size_t vl;
    const char *name = lua_tostring(L, name_idx), *value = lua_tolstring(L, value_idx, &vl);
    const char *why;
    if (strlen(value) != vl)
        luaL_error(L, "%s: bad return value: add_headers %s: NUL in value", where, name);
    if (!msg_valid_header(name, value, &why))
        luaL_error(L, "%s: bad return value: add_headers %s: %s", where, name, why);
    if (inv->nheaders >= MSG_MAX_ADDED)
        luaL_error(L, "%s: bad return value: more than %d add_headers", where, MSG_MAX_ADDED);
    inv->headers = xgrow(inv->headers, sizeof *inv->headers, &inv->headers_cap, inv->nheaders + 1);
    inv->headers[inv->nheaders++] = (struct added){xstrdup(name), xstrdup(value)};
}

static int cmp_added(const void *a, const void *b)
{
    return strcmp(((const struct added *)a)->name, ((const struct added *)b)->name);
}

/* add_headers = { ["X-A"] = "1" } (applied in name order) or { {name=, value=}, ... } (in
 * list order). */
static void take_headers(lua_State *L, struct invocation *inv, int t, const char *where)
{
    sandbox_own(sandbox_of(L), inv, free_added);
    lua_Integer n = (lua_Integer)lua_rawlen(L, t);
    if (n > 0) {
        for (lua_Integer i = 1; i <= n; i++) {
            if (lua_rawgeti(L, t, i) != LUA_TTABLE)
                luaL_error(L, "%s: bad return value: add_headers[%d] must be a table", where,
                           (int)i);
            int e = lua_gettop(L);
            raw_field(L, e, "name");
            raw_field(L, e, "value");
            add_result_header(L, inv, e + 1, e + 2, where);
            lua_settop(L, e - 1);
        }
        return;
    }
    lua_pushnil(L);
    while (lua_next(L, t)) {
        add_result_header(L, inv, -2, -1, where);
        lua_pop(L, 1);
    }
    qsort(inv->headers, inv->nheaders, sizeof *inv->headers, cmp_added);
}

static void take_result(lua_State *L, struct invocation *inv, const char *where)
{
    int r = lua_gettop(L);
    inv->status = ACTION_OK;
    switch (lua_type(L, r)) {
    case LUA_TNIL:
        return;
    case LUA_TSTRING:
        if (parse_disposition(lua_tostring(L, r), &inv->status) < 0)
            luaL_error(L,
                       "%s: bad return value: unknown disposition \"%s\" (want CONTINUE, "
                       "STOP_RULE or STOP_RULE_SET)",
                       where, lua_tostring(L, r));
        return;
    case LUA_TTABLE:
        break;
    default:
        luaL_error(L, "%s: bad return value: a %s (want a disposition string or a table)", where,
                   luaL_typename(L, r));
    }
    lua_pushnil(L);
    while (lua_next(L, r)) {
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
        if (!k || (strcmp(k, "disposition") && strcmp(k, "bounce") && strcmp(k, "add_headers")))
            luaL_error(L,
                       "%s: bad return value: unknown key %s (want disposition, bounce, "
                       "add_headers)",
                       where, k ? k : luaL_typename(L, -2));
        lua_pop(L, 1);
    }
    int type = raw_field(L, r, "disposition");
    if (type != LUA_TNIL &&
        (type != LUA_TSTRING || parse_disposition(lua_tostring(L, -1), &inv->status) < 0))
        luaL_error(L,
                   "%s: bad return value: disposition must be CONTINUE, STOP_RULE or "
                   "STOP_RULE_SET",
                   where);
    lua_pop(L, 1);

    type = raw_field(L, r, "bounce");
    if (type == LUA_TTABLE) {
        int b = lua_gettop(L);
        const char *code = bounce_field(L, b, "smtp_reply_code", "550", where);
        const char *status = bounce_field(L, b, "status_code", "5.7.1", where);
        const char *msg = bounce_field(L, b, "message", "Message rejected by policy", where);
        char why[256];
        if (bounce_reply_validate(code, status, msg, why, sizeof why) < 0)
            luaL_error(L, "%s: bad return value: bounce: %s", where, why);
        snprintf(inv->reply, sizeof inv->reply, "%s %s %s", code, status, msg);
        lua_settop(L, b);
    } else if (type != LUA_TNIL) {
        luaL_error(L, "%s: bad return value: bounce must be a table", where);
    }
    lua_pop(L, 1);

    type = raw_field(L, r, "add_headers");
    if (type == LUA_TTABLE)
        take_headers(L, inv, lua_gettop(L), where);
    else if (type != LUA_TNIL)
        luaL_error(L, "%s: bad return value: add_headers must be a table", where);
    lua_pop(L, 1);
}

/* --- running -------------------------------------------------------------------------------------
 */

/* Loads the bytecode, runs the chunk and leaves the handler on the stack. */
static void load_handler(lua_State *L, const struct invocation *inv)
{
    const struct lua_script *s = inv->s;
    script_stdlib_open(L, &inv->origin);
    int rc = luaL_loadbufferx(L, s->code.data, s->code.len, s->path, "b");
    if (rc != LUA_OK)
        sandbox_rethrow(L, rc);
    lua_call(L, 0, 0);
    if (lua_getglobal(L, s->fn) != LUA_TFUNCTION)
        luaL_error(L, "%s: defines no function '%s'", s->path, s->fn);
}

/* The protected body of one invocation: lightuserdata invocation at 1. */
static int invoke(lua_State *L)
{
    struct invocation *inv = lua_touserdata(L, 1);
    struct action_ctx *ctx = inv->ctx;
    lua_settop(L, 0);
    load_handler(L, inv);
    lua_Debug ar;
    lua_pushvalue(L, 1);
    lua_getinfo(L, ">S", &ar);
    char where[200];
    snprintf(where, sizeof where, "%s:%d", ar.short_src, ar.linedefined);

    struct event_info ev = {.m = ctx->msg,
                            .rcpts = ctx->rcpts,
                            .nrcpts = ctx->nrcpts,
                            .rule = ctx->rule_name,
                            .script = inv->s->path};
    event_push(L, &ev);
    msg_api_push(L, ctx->msg);
    lua_call(L, 2, 1);
    take_result(L, inv, where);
    return 0;
}

/* At config load: runs the chunk once (top-level code must be quick and valid) and checks that
 * the handler exists. */
static int check_loaded(lua_State *L)
{
    struct invocation *inv = lua_touserdata(L, 1);
    lua_settop(L, 0);
    load_handler(L, inv);
    return 0;
}

static enum action_status lua_script_run(const void *state, struct action_ctx *ctx)
{
    const struct lua_script *s = state;
    struct invocation inv = {
        .s = s, .ctx = ctx, .origin = {.script = s->path, .qid = ctx->msg->env.qid}};
    struct sandbox sb;
    if (sandbox_open(&sb, s->memory, s->timeout_ms, s->path) < 0) {
        snprintf(ctx->error, sizeof ctx->error, "%s: cannot create a Lua state within %zu KiB",
                 s->path, s->memory / 1024);
        return ACTION_FAILED;
    }
    sb.user = &inv;
    lua_pushcfunction(sb.L, invoke);
    lua_pushlightuserdata(sb.L, &inv);
    sandbox_start(&sb);
    char err[512];
    if (sandbox_pcall(&sb, 1, 0, err, sizeof err) != LUA_OK) {
        struct log_kv kv[] = {{"qid", ctx->msg->env.qid},
                              {"rule", ctx->rule_name},
                              {"script", s->path},
                              {"error", err}};
        log_event(LOG_WARN, "script_failed", kv, 4);
        snprintf(ctx->error, sizeof ctx->error, "%.255s", err);
        sandbox_close(&sb);
        return ACTION_FAILED;
    }
    if (inv.reply[0])
        action_refuse_rcpts(ctx, inv.reply, NULL);
    for (size_t i = 0; i < inv.nheaders; i++)
        message_add_header(ctx->msg, inv.headers[i].name, inv.headers[i].value);
    enum action_status st = inv.status;
    sandbox_close(&sb); /* frees inv.headers */
    return st;
}

/* --- config -------------------------------------------------------------------------------------
 */

static int dump_writer(lua_State *L, const void *p, size_t sz, void *ud)
{
    buf_append(ud, p, sz);
    return 0;
}

static char *resolve(lua_State *L, const char *script)
{
    const char *cfg = action_dsl_path(L);
    const char *slash = cfg ? strrchr(cfg, '/') : NULL;
    if (script[0] == '/' || !slash)
        return xstrdup(script);
    struct buf b = {0};
    buf_append(&b, cfg, (size_t)(slash - cfg) + 1);
    buf_puts(&b, script);
    char *out = xstrdup(buf_cstr(&b));
    buf_free(&b);
    return out;
}

static int read_script(const char *path, struct buf *out, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "lua: cannot read script %s: %s", path, strerror(errno));
        return -1;
    }
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0 && out->len <= SCRIPT_MAX_BYTES)
        buf_append(out, chunk, n);
    int bad = ferror(f);
    fclose(f);
    if (bad || out->len > SCRIPT_MAX_BYTES) {
        snprintf(err, errlen, "lua: script %s: %s", path, bad ? "read error" : "larger than 1 MiB");
        return -1;
    }
    return 0;
}

/* Compiles the source (text only), keeps its bytecode, and runs it once to find the handler. */
static int compile(struct lua_script *s, char *err, size_t errlen)
{
    struct buf src = {0};
    if (read_script(s->path, &src, err, errlen) < 0) {
        buf_free(&src);
        return -1;
    }
    struct sandbox sb;
    if (sandbox_open(&sb, s->memory, s->timeout_ms, s->path) < 0) {
        buf_free(&src);
        snprintf(err, errlen, "lua: cannot create a Lua state within memory_kb");
        return -1;
    }
    char chunkname[600];
    snprintf(chunkname, sizeof chunkname, "@%s", s->path);
    int rc = luaL_loadbufferx(sb.L, src.data ? src.data : "", src.len, chunkname, "t");
    buf_free(&src);
    if (rc != LUA_OK) {
        snprintf(err, errlen, "lua: syntax error in %s", lua_tostring(sb.L, -1));
        sandbox_close(&sb);
        return -1;
    }
    lua_dump(sb.L, dump_writer, &s->code, 0);
    lua_settop(sb.L, 0);
    struct invocation inv = {.s = s, .origin = {.script = s->path}};
    lua_pushcfunction(sb.L, check_loaded);
    lua_pushlightuserdata(sb.L, &inv);
    sandbox_start(&sb);
    char why[400];
    rc = sandbox_pcall(&sb, 1, 0, why, sizeof why);
    sandbox_close(&sb);
    if (rc != LUA_OK) {
        snprintf(err, errlen, "lua: %s", why);
        return -1;
    }
    return 0;
}

static int lua_script_parse(lua_State *L, int idx, void **state, char *err, size_t errlen)
{
    static const char *const keys[] = {"script",     "fn",        "invocation",
                                       "timeout_ms", "memory_kb", NULL};
    struct lua_script *s = xcalloc(1, sizeof *s);
    *state = s;
    char *script = NULL, *invocation = NULL;
    long long timeout = 1000, memory_kb = 16384;
    int rc = -1;
    if (lf_check_keys(L, idx, "lua", keys, err, errlen) < 0 ||
        lf_string(L, idx, "script", true, &script, err, errlen) < 0 ||
        lf_string(L, idx, "fn", false, &s->fn, err, errlen) < 0 ||
        lf_string(L, idx, "invocation", false, &invocation, err, errlen) < 0 ||
        lf_integer(L, idx, "timeout_ms", 1, 60000, &timeout, err, errlen) < 0 ||
        lf_integer(L, idx, "memory_kb", 256, 1024 * 1024, &memory_kb, err, errlen) < 0)
        goto out;
    if (!s->fn)
        s->fn = xstrdup("handler");
    if (invocation && strcmp(invocation, "async") == 0) {
        s->async = 1;
    } else if (invocation && strcmp(invocation, "sync") != 0) {
        snprintf(err, errlen, "lua: invocation must be \"sync\" or \"async\", got \"%s\"",
                 invocation);
        goto out;
    }
    s->timeout_ms = (int)timeout;
    s->memory = (size_t)memory_kb * 1024;
    s->path = resolve(L, script);
    rc = compile(s, err, errlen);
out:
    free(script);
    free(invocation);
    return rc;
}

static void lua_script_describe(const void *state, struct buf *out)
{
    const struct lua_script *s = state;
    buf_printf(out, "script=%s fn=%s invocation=%s timeout_ms=%d memory_kb=%zu", s->path, s->fn,
               s->async ? "async" : "sync", s->timeout_ms, s->memory / 1024);
}

static void lua_script_free(void *state)
{
    struct lua_script *s = state;
    if (!s)
        return;
    free(s->path);
    free(s->fn);
    buf_free(&s->code);
    free(s);
}

/* invocation = "async" (SES's Event invocation): the script runs after the 250, from the spool,
 * on a message rebuilt from the spooled copy, and is retried on failure like any
 * post-acceptance action. Its disposition can no longer change the chain or the reply: a bounce
 * it asks for is logged, not sent. */
static int lua_script_deliver(const void *state, struct spool_job *job, char *err, size_t errlen)
{
    struct message *m = message_new(&job->env); /* the job's recipients, the rule's */
    buf_append(&m->body, job->content.data, job->content.len);
    size_t *idx = xcalloc(job->env.nrcpts ? job->env.nrcpts : 1, sizeof *idx);
    for (size_t i = 0; i < job->env.nrcpts; i++)
        idx[i] = i;
    struct rcpt_outcome *outcomes =
        xcalloc(job->env.nrcpts ? job->env.nrcpts : 1, sizeof *outcomes);
    struct maildir_batch batch = {0};
    struct action_ctx ctx = {.msg = m,
                             .rule_name = job->rule,
                             .rcpts = idx,
                             .nrcpts = job->env.nrcpts,
                             .batch = &batch,
                             .outcomes = outcomes};
    enum action_status st = lua_script_run(state, &ctx);
    int rc = 0;
    if (st == ACTION_FAILED) {
        snprintf(err, errlen, "%s", ctx.error);
        rc = -1;
    } else if (job->env.nrcpts && outcomes[0].refused) {
        struct log_kv kv[] = {{"job", job->id}, {"reply", outcomes[0].reply}};
        log_event(LOG_WARN, "script_bounce_ignored", kv, 2);
    }
    maildir_batch_free(&batch);
    free(outcomes);
    free(idx);
    message_free(m);
    return rc;
}

extern const struct action_type action_lua;

static const struct action_type action_lua_async = {
    .name = "lua",
    .delivers = true,
    .parse = lua_script_parse,
    .describe = lua_script_describe,
    .free_state = lua_script_free,
    .deliver = lua_script_deliver,
};

static const struct action_type *lua_script_variant(const void *state)
{
    const struct lua_script *s = state;
    return s->async ? &action_lua_async : &action_lua;
}

const struct action_type action_lua = {
    .name = "lua",
    .delivers = true,
    .parse = lua_script_parse,
    .run = lua_script_run,
    .describe = lua_script_describe,
    .free_state = lua_script_free,
    .variant = lua_script_variant,
};
