/* The script sandbox: limits are enforced from inside the VM (allocator and count hook), never
 * by watching from outside, so ending a runaway script costs nothing but that invocation. */
#include "lua/sandbox.h"
#include "core/xalloc.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Instructions between two clock checks: small enough that a loop ends within a few
 * microseconds of its deadline, large enough that the check costs nothing measurable. */
#define HOOK_COUNT 1000
/* Worst-case backtracking steps a pattern call may risk per second of the script's timeout:
 * measured at 3-6 ns a step, about the timeout again of C time that the hook cannot
 * interrupt. */
#define PATTERN_STEPS_PER_SECOND 2e8
#define PATTERN_MAX_LEN 512

/* Creating a state and opening the libraries makes a few hundred small allocations, about
 * half of an invocation's cost with malloc. They come from a per-thread bump arena instead,
 * reused by the next sandbox on the thread; frees inside it are no-ops (the bytes still count
 * against the cap while live, so the accounting is unchanged). Past the arena: malloc. */
#define ARENA_BYTES (128 * 1024)
static _Thread_local _Alignas(16) char arena[ARENA_BYTES];
static _Thread_local struct sandbox *arena_user;

static int in_arena(const void *p)
{
    return (const char *)p >= arena && (const char *)p < arena + ARENA_BYTES;
}

static void *arena_alloc(struct sandbox *sb, size_t n)
{
    size_t a = (n + 15) & ~(size_t)15;
    if (arena_user != sb || a > ARENA_BYTES - sb->arena_top)
        return NULL;
    void *p = arena + sb->arena_top;
    sb->arena_top += a;
    return p;
}

static void *sb_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    struct sandbox *sb = ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        if (!in_arena(ptr))
            free(ptr);
        sb->used -= old;
        return NULL;
    }
    if (nsize > old && sb->used + (nsize - old) > sb->limit) {
        /* Lua retries once after a full collection; only a second refusal raises. */
        sb->refusals++;
        return NULL;
    }
    void *p;
    if (ptr && in_arena(ptr)) {
        if (nsize <= old)
            return ptr; /* shrinking in place */
        p = arena_alloc(sb, nsize);
        if (!p)
            p = malloc(nsize);
        if (p)
            memcpy(p, ptr, old);
    } else if (!ptr) {
        p = arena_alloc(sb, nsize);
        if (!p)
            p = malloc(nsize);
    } else {
        p = realloc(ptr, nsize);
    }
    if (p)
        sb->used = sb->used - old + nsize;
    return p;
}

struct sandbox *sandbox_of(lua_State *L)
{
    void *ud;
    lua_getallocf(L, &ud);
    return ud;
}

static int expired(const struct sandbox *sb)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > sb->deadline.tv_sec ||
           (now.tv_sec == sb->deadline.tv_sec && now.tv_nsec >= sb->deadline.tv_nsec);
}

int sandbox_remaining_ms(struct sandbox *sb)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long long ms = (long long)(sb->deadline.tv_sec - now.tv_sec) * 1000 +
                   (sb->deadline.tv_nsec - now.tv_nsec) / 1000000;
    return ms > 0 ? (int)ms : 0;
}

/* Once the deadline passed, every firing raises again: a script that catches the error (with
 * pcall in a loop, or in a __close handler) is stopped again a thousand instructions later. */
static void count_hook(lua_State *L, lua_Debug *ar)
{
    struct sandbox *sb = sandbox_of(L);
    if (lua_getinfo(L, "Sl", ar) && ar->currentline > 0)
        snprintf(sb->where, sizeof sb->where, "%s:%d", ar->short_src, ar->currentline);
    if (sb->killed == SANDBOX_ALIVE && !expired(sb))
        return;
    sb->killed = SANDBOX_TIMEOUT;
    lua_pushfstring(L, "%s: timeout: script ran longer than %d ms", sb->where, sb->timeout_ms);
    lua_error(L);
}

int sandbox_rethrow(lua_State *L, int status)
{
    if (status == LUA_ERRMEM)
        sandbox_of(L)->killed = SANDBOX_MEMORY;
    return lua_error(L);
}

/* --- protected calls that cannot swallow a kill -------------------------------------------- */

/* After lua_pcall returned status with [true, results...] or [true, error] above base. */
static int finish_pcall(lua_State *L, int status, int base)
{
    struct sandbox *sb = sandbox_of(L);
    if (status == LUA_ERRMEM)
        sb->killed = SANDBOX_MEMORY;
    if (sb->killed != SANDBOX_ALIVE)
        return lua_error(L);
    if (status != LUA_OK) {
        lua_pushboolean(L, 0);
        lua_rotate(L, -2, 1);
        return 2;
    }
    return lua_gettop(L) - base;
}

static int sb_pcall(lua_State *L)
{
    luaL_checkany(L, 1);
    lua_pushboolean(L, 1);
    lua_insert(L, 1);
    return finish_pcall(L, lua_pcall(L, lua_gettop(L) - 2, LUA_MULTRET, 0), 0);
}

static int sb_xpcall(lua_State *L)
{
    int n = lua_gettop(L);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_pushboolean(L, 1);
    lua_pushvalue(L, 1);
    lua_rotate(L, 3, 2); /* f, msgh, true, f, args... */
    return finish_pcall(L, lua_pcall(L, n - 2, LUA_MULTRET, 2), 2);
}

/* coroutine.resume's answer is (false, msg) for any error, memory errors included: a refused
 * allocation followed by Lua's fixed out-of-memory message is the kill. */
static int sb_resume(lua_State *L)
{
    struct sandbox *sb = sandbox_of(L);
    unsigned before = sb->refusals;
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    if (!lua_toboolean(L, 1)) {
        const char *m = lua_tostring(L, 2);
        if (sb->refusals != before && m && strcmp(m, "not enough memory") == 0)
            sb->killed = SANDBOX_MEMORY;
        if (sb->killed != SANDBOX_ALIVE) {
            lua_settop(L, 2);
            return lua_error(L);
        }
    }
    return lua_gettop(L);
}

/* --- restricted base functions -------------------------------------------------------------- */

/* load(chunk [, name [, mode [, env]]]) with mode forced to text: bytecode can crash the VM. */
static int sb_load(lua_State *L)
{
    int n = lua_gettop(L);
    if (n > 4)
        lua_settop(L, n = 4);
    while (lua_gettop(L) < 3)
        lua_pushnil(L);
    lua_pushliteral(L, "t");
    lua_replace(L, 3);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, n > 3 ? 4 : 3, LUA_MULTRET);
    return lua_gettop(L);
}

static int sb_collectgarbage(lua_State *L)
{
    static const char *const allowed[] = {"collect", "count", "step", "isrunning", NULL};
    const char *opt = luaL_optstring(L, 1, "collect");
    for (int i = 0; allowed[i]; i++) {
        if (strcmp(opt, allowed[i]) == 0) {
            lua_pushvalue(L, lua_upvalueindex(1));
            lua_insert(L, 1);
            lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
            return lua_gettop(L);
        }
    }
    return luaL_error(L, "collectgarbage(\"%s\") is not allowed in scripts", opt);
}

/* Finalizers run with hooks off (Lua stops hooks during GC metamethods), so a __gc loop could
 * never be stopped: metatables with __gc are refused. Lua marks an object for finalization
 * only when its metatable has __gc at setmetatable time, so checking here is enough. */
static int sb_setmetatable(lua_State *L)
{
    if (lua_type(L, 2) == LUA_TTABLE) {
        lua_pushliteral(L, "__gc");
        if (lua_rawget(L, 2) != LUA_TNIL)
            return luaL_error(L, "__gc metamethods are not allowed in scripts");
        lua_pop(L, 1);
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

/* --- bounded string functions ---------------------------------------------------------------- */

static int sb_rep(lua_State *L)
{
    struct sandbox *sb = sandbox_of(L);
    size_t l, lsep;
    luaL_checklstring(L, 1, &l);
    lua_Integer n = luaL_checkinteger(L, 2);
    luaL_optlstring(L, 3, "", &lsep);
    /* Lua's own rep loops n times even for an empty result: with n = 2^62 that never ends. */
    if (n <= 0 || l + lsep == 0) {
        lua_pushliteral(L, "");
        return 1;
    }
    if ((lua_Unsigned)n > sb->limit / (l + lsep))
        return luaL_error(L, "string.rep: result would exceed the script's memory limit");
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

/* Lua patterns backtrack: each *, + or - can retry over the whole subject, each ? doubles the
 * attempts, and an unanchored search restarts at every position. The matcher runs in C where
 * the hook cannot stop it, so calls whose worst case exceeds the budget are refused upfront. */
static double pattern_cost(const char *p, size_t len, size_t subject_len, int may_anchor)
{
    int q = 0, opt = 0;
    int anchored = may_anchor && len > 0 && p[0] == '^';
    for (size_t i = anchored; i < len; i++) {
        char c = p[i];
        if (c == '%') {
            if (i + 1 < len && p[i + 1] == 'b') {
                q++;
                i += 3;
            } else {
                i++;
            }
        } else if (c == '[') {
            i++;
            if (i < len && p[i] == '^')
                i++;
            do {
                if (i < len && p[i] == '%')
                    i++;
                i++;
            } while (i < len && p[i] != ']');
        } else if (c == '*' || c == '+' || c == '-') {
            q++;
        } else if (c == '?') {
            opt++;
        }
    }
    return pow((double)subject_len + 1, q + !anchored) * pow(2, opt);
}

static int guarded_pattern(lua_State *L, int may_anchor)
{
    size_t n, pl;
    luaL_checklstring(L, 1, &n);
    const char *p = luaL_checklstring(L, 2, &pl);
    int plain = lua_toboolean(L, lua_upvalueindex(2)) && lua_toboolean(L, 4);
    if (!plain) {
        if (pl > PATTERN_MAX_LEN)
            return luaL_error(L, "pattern longer than %d bytes", PATTERN_MAX_LEN);
        if (pattern_cost(p, pl, n, may_anchor) >
            PATTERN_STEPS_PER_SECOND * sandbox_of(L)->timeout_ms / 1000)
            return luaL_error(L,
                              "pattern too costly for a %d-byte subject (sandbox bound): use "
                              "fewer repetitions, an anchor, or a plain find",
                              (int)n);
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

static int sb_find(lua_State *L)
{
    return guarded_pattern(L, 1);
}

static int sb_gmatch(lua_State *L)
{
    return guarded_pattern(L, 0);
}

/* table.insert/remove/move/concat/unpack/sort loop in C over a range that __len (or the
 * arguments) can make astronomically long without allocating: no hook would ever fire. No real
 * table can hold more elements than the memory cap has room for (16-byte slots), so longer
 * ranges are refused. Upvalue 2 says which arguments give the range. */
enum range_kind { RANGE_LEN, RANGE_MOVE, RANGE_CONCAT, RANGE_UNPACK };

static int sb_table_range(lua_State *L)
{
    struct sandbox *sb = sandbox_of(L);
    lua_Integer first = 1, last;
    switch ((enum range_kind)lua_tointeger(L, lua_upvalueindex(2))) {
    case RANGE_MOVE:
        first = luaL_checkinteger(L, 2);
        last = luaL_checkinteger(L, 3);
        break;
    case RANGE_CONCAT:
        first = luaL_optinteger(L, 3, 1);
        last = lua_isnoneornil(L, 4) ? luaL_len(L, 1) : luaL_checkinteger(L, 4);
        break;
    case RANGE_UNPACK:
        first = luaL_optinteger(L, 2, 1);
        last = lua_isnoneornil(L, 3) ? luaL_len(L, 1) : luaL_checkinteger(L, 3);
        break;
    default:
        last = luaL_len(L, 1);
    }
    lua_Integer max = (lua_Integer)(sb->limit / 16);
    if (last >= first && (first < 0 ? last > max + first : last - first >= max))
        return luaL_error(L, "table range of %I elements is beyond the script's memory limit",
                          (lua_Integer)((lua_Unsigned)last - (lua_Unsigned)first + 1));
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

static void wrap_range(lua_State *L, int t, const char *name, enum range_kind kind)
{
    lua_getfield(L, t, name);
    lua_pushinteger(L, kind);
    lua_pushcclosure(L, sb_table_range, 2);
    lua_setfield(L, t, name);
}

/* Replaces t[name] by a C closure over the original (and an optional second upvalue). */
static void wrap_field(lua_State *L, int t, const char *name, lua_CFunction fn, int extra)
{
    lua_getfield(L, t, name);
    lua_pushboolean(L, extra);
    lua_pushcclosure(L, fn, 2);
    lua_setfield(L, t, name);
}

static void open_restricted(lua_State *L)
{
    luaL_requiref(L, LUA_GNAME, luaopen_base, 1);
    int g = lua_gettop(L);
    static const char *const removed[] = {"dofile", "loadfile", "print", "warn", "require", NULL};
    for (int i = 0; removed[i]; i++) {
        lua_pushnil(L);
        lua_setfield(L, g, removed[i]);
    }
    lua_pushcfunction(L, sb_pcall);
    lua_setfield(L, g, "pcall");
    lua_pushcfunction(L, sb_xpcall);
    lua_setfield(L, g, "xpcall");
    wrap_field(L, g, "load", sb_load, 0);
    wrap_field(L, g, "collectgarbage", sb_collectgarbage, 0);
    wrap_field(L, g, "setmetatable", sb_setmetatable, 0);

    luaL_requiref(L, LUA_STRLIBNAME, luaopen_string, 1);
    int s = lua_gettop(L);
    lua_pushnil(L);
    lua_setfield(L, s, "dump");
    wrap_field(L, s, "rep", sb_rep, 0);
    wrap_field(L, s, "find", sb_find, 1);
    wrap_field(L, s, "match", sb_find, 0);
    wrap_field(L, s, "gsub", sb_find, 0);
    wrap_field(L, s, "gmatch", sb_gmatch, 0);

    luaL_requiref(L, LUA_TABLIBNAME, luaopen_table, 1);
    int t = lua_gettop(L);
    wrap_range(L, t, "insert", RANGE_LEN);
    wrap_range(L, t, "remove", RANGE_LEN);
    wrap_range(L, t, "sort", RANGE_LEN);
    wrap_range(L, t, "move", RANGE_MOVE);
    wrap_range(L, t, "concat", RANGE_CONCAT);
    wrap_range(L, t, "unpack", RANGE_UNPACK);
    luaL_requiref(L, LUA_MATHLIBNAME, luaopen_math, 1);
    luaL_requiref(L, LUA_UTF8LIBNAME, luaopen_utf8, 1);
    luaL_requiref(L, LUA_COLIBNAME, luaopen_coroutine, 1);
    wrap_field(L, lua_gettop(L), "resume", sb_resume, 0);

    /* os: only the clock and calendar functions. */
    luaL_requiref(L, LUA_OSLIBNAME, luaopen_os, 0);
    int os = lua_gettop(L);
    lua_createtable(L, 0, 3);
    static const char *const kept[] = {"time", "clock", "date", NULL};
    for (int i = 0; kept[i]; i++) {
        lua_getfield(L, os, kept[i]);
        lua_setfield(L, -2, kept[i]);
    }
    lua_setglobal(L, LUA_OSLIBNAME);
    /* Nothing may reach the originals through package.loaded (no package library anyway). */
    lua_pushnil(L);
    lua_setfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_settop(L, 0);
}

static int open_protected(lua_State *L)
{
    open_restricted(L);
    return 0;
}

int sandbox_open(struct sandbox *sb, size_t memory_bytes, int timeout_ms, const char *name)
{
    memset(sb, 0, sizeof *sb);
    sb->limit = memory_bytes;
    sb->timeout_ms = timeout_ms;
    sb->name = name;
    snprintf(sb->where, sizeof sb->where, "%s", name);
    if (!arena_user)
        arena_user = sb; /* a nested sandbox on the same thread uses malloc */
    sb->L = lua_newstate(sb_alloc, sb);
    if (!sb->L) {
        sandbox_close(sb);
        return -1;
    }
    lua_pushcfunction(sb->L, open_protected);
    if (lua_pcall(sb->L, 0, 0, 0) != LUA_OK) {
        sandbox_close(sb);
        return -1;
    }
    /* The clock starts at sandbox_start; until then a far deadline. */
    clock_gettime(CLOCK_MONOTONIC, &sb->deadline);
    sb->deadline.tv_sec += 3600;
    lua_sethook(sb->L, count_hook, LUA_MASKCOUNT, HOOK_COUNT);
    return 0;
}

void sandbox_start(struct sandbox *sb)
{
    clock_gettime(CLOCK_MONOTONIC, &sb->deadline);
    sb->deadline.tv_sec += sb->timeout_ms / 1000;
    sb->deadline.tv_nsec += (long)(sb->timeout_ms % 1000) * 1000000;
    if (sb->deadline.tv_nsec >= 1000000000) {
        sb->deadline.tv_sec++;
        sb->deadline.tv_nsec -= 1000000000;
    }
}

void sandbox_close(struct sandbox *sb)
{
    if (sb->L)
        lua_close(sb->L);
    sb->L = NULL;
    if (arena_user == sb)
        arena_user = NULL;
    for (size_t i = sb->nowned; i-- > 0;)
        sb->owned[i].free_fn(sb->owned[i].ptr);
    free(sb->owned);
    sb->owned = NULL;
    sb->nowned = sb->owned_cap = 0;
}

void sandbox_own(struct sandbox *sb, void *ptr, void (*free_fn)(void *))
{
    sb->owned = xgrow(sb->owned, sizeof *sb->owned, &sb->owned_cap, sb->nowned + 1);
    sb->owned[sb->nowned++] = (struct sandbox_owned){ptr, free_fn};
}

void sandbox_release(struct sandbox *sb, void *ptr)
{
    for (size_t i = sb->nowned; i-- > 0;) {
        if (sb->owned[i].ptr == ptr) {
            sb->owned[i].free_fn(ptr);
            memmove(&sb->owned[i], &sb->owned[i + 1], (sb->nowned - i - 1) * sizeof *sb->owned);
            sb->nowned--;
            return;
        }
    }
}

int sandbox_pcall(struct sandbox *sb, int nargs, int nresults, char *err, size_t errlen)
{
    int status = lua_pcall(sb->L, nargs, nresults, 0);
    if (status == LUA_OK)
        return status;
    if (status == LUA_ERRMEM)
        sb->killed = SANDBOX_MEMORY;
    if (sb->killed == SANDBOX_MEMORY) {
        snprintf(err, errlen, "%s: memory limit of %zu KiB exceeded", sb->where, sb->limit / 1024);
    } else if (sb->killed == SANDBOX_TIMEOUT) {
        snprintf(err, errlen, "%s: timeout: script ran longer than %d ms", sb->where,
                 sb->timeout_ms);
    } else if (lua_type(sb->L, -1) == LUA_TSTRING) {
        /* Errors raised from C (C stack overflow, errors with level 0) carry no position. */
        const char *msg = lua_tostring(sb->L, -1);
        if (strncmp(msg, sb->name, strlen(sb->name)) == 0)
            snprintf(err, errlen, "%s", msg);
        else
            snprintf(err, errlen, "%s: %s", sb->where, msg);
    } else {
        snprintf(err, errlen, "%s: error object is a %s value", sb->where,
                 luaL_typename(sb->L, -1));
    }
    for (char *p = err; *p; p++) /* one log line */
        if (*p == '\n' || *p == '\r' || *p == '\t')
            *p = ' ';
    lua_pop(sb->L, 1);
    return status;
}
