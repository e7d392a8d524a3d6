/* The sandbox on its own: kills are reported as such with a position, owned C resources are
 * freed whatever ends the call (ASan checks), the arena is reused safely, and the pattern
 * bound refuses blow-ups while letting everyday patterns through. */
#include "lua/sandbox.h"

#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures, checks;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        checks++;                                                                                  \
        if (!(cond)) {                                                                             \
            failures++;                                                                            \
            fprintf(stderr, "FAIL line %d: ", __LINE__);                                           \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)

/* Runs code in a fresh sandbox with a malloc'd block owned by it; returns the status, the kill
 * and the message. */
static int run(const char *code, size_t memory, int timeout_ms, enum sandbox_kill *killed,
               char *err, size_t errlen)
{
    struct sandbox sb;
    if (sandbox_open(&sb, memory, timeout_ms, "t.lua") < 0) {
        snprintf(err, errlen, "open failed");
        *killed = SANDBOX_ALIVE;
        return -1;
    }
    sandbox_own(&sb, malloc(100), free);
    err[0] = '\0';
    int rc = luaL_loadbufferx(sb.L, code, strlen(code), "@t.lua", "t");
    if (rc == LUA_OK) {
        sandbox_start(&sb);
        rc = sandbox_pcall(&sb, 0, 0, err, errlen);
    } else {
        snprintf(err, errlen, "%s", lua_tostring(sb.L, -1));
    }
    *killed = sb.killed;
    sandbox_close(&sb);
    return rc;
}

static void expect(const char *code, int ok, enum sandbox_kill kill, const char *fragment)
{
    char err[512];
    enum sandbox_kill killed = SANDBOX_ALIVE;
    int rc = run(code, 1024 * 1024, 100, &killed, err, sizeof err);
    CHECK((rc == LUA_OK) == ok, "%s: status %d (%s)", code, rc, err);
    CHECK(killed == kill, "%s: kill %d, want %d (%s)", code, (int)killed, (int)kill, err);
    CHECK(!fragment || strstr(err, fragment), "%s: '%s' lacks '%s'", code, err, fragment);
}

int main(void)
{
    /* Kills, with the position the hook last saw. */
    expect("local x = 0\nwhile true do x = x + 1 end", 0, SANDBOX_TIMEOUT, "t.lua:2: timeout");
    expect("while true do pcall(function() while true do end end) end", 0, SANDBOX_TIMEOUT,
           "timeout");
    expect("local t = {}\nfor i = 1, 1e9 do t[i] = {} end", 0, SANDBOX_MEMORY,
           "memory limit of 1024 KiB exceeded");
    expect("local ok = pcall(string.rep, 'x', 1 << 19)\nlocal s = ''\n"
           "while true do s = s .. ('y'):rep(4096) end",
           0, SANDBOX_MEMORY, "memory limit");
    /* Ordinary errors are not kills. */
    expect("error('plain')", 0, SANDBOX_ALIVE, "t.lua:1: plain");
    expect("local ok, e = pcall(error, 'caught')\nassert(not ok and e == 'caught')", 1,
           SANDBOX_ALIVE, NULL);
    /* The library. */
    expect("assert(io == nil and debug == nil and require == nil and dofile == nil)\n"
           "assert(os.execute == nil and os.time and os.clock and os.date)\n"
           "assert(string.dump == nil and print == nil)",
           1, SANDBOX_ALIVE, NULL);
    expect("assert(select(2, load('\\27Lua')):find('binary'))", 1, SANDBOX_ALIVE, NULL);
    expect("assert(load('return 1 + 1')() == 2)", 1, SANDBOX_ALIVE, NULL);
    expect("collectgarbage('generational')", 0, SANDBOX_ALIVE, "not allowed");
    expect("assert(collectgarbage('count') > 0)", 1, SANDBOX_ALIVE, NULL);
    expect("setmetatable({}, {__gc = function() end})", 0, SANDBOX_ALIVE, "__gc");
    /* Patterns: everyday uses pass, blow-ups are refused before they start. */
    expect("local s = ('word '):rep(40) .. 'user@example.test'\n"
           "assert(s:match('(%w+)@([%w.]+)') == 'user')\n"
           "assert(('  x  '):match('^%s*(.-)%s*$') == 'x')\n"
           "assert(('a'):rep(100000):find('unsubscribe', 1, true) == nil)\n"
           "assert(('a'):rep(100000):find('b') == nil)\n"
           "assert(select(2, ('a,b,c'):gsub(',', ';')) == 2)",
           1, SANDBOX_ALIVE, NULL);
    expect("return ('a'):rep(50000):find('.-.-.-b')", 0, SANDBOX_ALIVE, "pattern too costly");
    expect("return ('a'):rep(10000):match('a?a?a?a?a?a?a?a?a?a?a?a?a?a?a?a?a?a?a?a?aaaaa')", 0,
           SANDBOX_ALIVE, "pattern too costly");
    expect("assert(('' ):rep(1 << 62) == '')", 1, SANDBOX_ALIVE, NULL);
    expect("return ('x'):rep(1 << 40)", 0, SANDBOX_ALIVE, "memory limit");
    expect("table.move({}, 1, 1 << 60, 2)", 0, SANDBOX_ALIVE, "beyond");

    /* Many sandboxes in a row on one thread reuse the arena; nested ones use malloc. */
    for (int i = 0; i < 200; i++) {
        struct sandbox a, b;
        CHECK(sandbox_open(&a, 1 << 20, 100, "a") == 0, "open a");
        CHECK(sandbox_open(&b, 1 << 20, 100, "b") == 0, "open b");
        luaL_dostring(a.L, "x = ('a'):rep(1000)");
        luaL_dostring(b.L, "y = {1, 2, 3}");
        sandbox_close(&b);
        sandbox_close(&a);
    }
    /* A cap too small for the library itself fails cleanly. */
    struct sandbox tiny;
    CHECK(sandbox_open(&tiny, 1024, 100, "tiny") < 0, "1 KiB sandbox opened");

    printf("%d checks, %d failures\n", checks, failures);
    return failures != 0;
}
