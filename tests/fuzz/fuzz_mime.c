/* libFuzzer target: the MIME paths the Lua message API exposes. Any bytes are a received
 * message handed to a lua action whose handler reads everything the API offers: the decoded
 * text, every attachment with its content, Subject (RFC 2047), From, all header fields, raw,
 * and the add_header / remove_header path. The handler checks what the API promises (sizes
 * match contents, headers come back as strings) and raises an "INVARIANT" error when not,
 * which aborts here; any other script error (a sandbox limit, say) is an allowed outcome. */
#include "actions/action.h"
#include "core/message.h"
#include "rules/ruleset.h"

#include <gmime/gmime.h>
#include <lauxlib.h>
#include <lua.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char script[] =
    "local function check(ok, what) if not ok then error('INVARIANT: ' .. what) end end\n"
    "function handler(event, msg)\n"
    "  check(type(msg:text()) == 'string', 'text is a string')\n"
    "  for _, a in ipairs(msg:attachments(true)) do\n"
    "    check(type(a.type) == 'string', 'attachment type')\n"
    "    check(a.size == #a.content, 'attachment size matches content')\n"
    "    check(a.name == nil or type(a.name) == 'string', 'attachment name')\n"
    "  end\n"
    "  for _, a in ipairs(msg:attachments()) do check(a.content == nil, 'no content') end\n"
    "  local s = msg:subject()\n"
    "  check(s == nil or type(s) == 'string', 'subject')\n"
    "  local f = msg:from()\n"
    "  check(f == nil or type(f) == 'string', 'from')\n"
    "  for _, h in ipairs(msg:headers()) do\n"
    "    check(type(h.name) == 'string' and type(h.value) == 'string', 'header field')\n"
    "  end\n"
    "  check(#msg:raw(64) <= 64, 'raw max')\n"
    "  msg:add_header('X-Fuzz', 'checked')\n"
    "  check(msg:header('X-Fuzz') == 'checked', 'added header readable')\n"
    "  check(msg:remove_header('X-Fuzz') >= 1, 'added header removable')\n"
    "  return 'CONTINUE'\n"
    "end\n";

static const struct action_type *lua_action;
static void *state;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    g_mime_init();
    char path[] = "/tmp/sluice-fuzz-mime-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0 || write(fd, script, sizeof script - 1) != (ssize_t)(sizeof script - 1))
        abort();
    close(fd);
    lua_action = action_type_find("lua");
    lua_State *L = luaL_newstate();
    lua_newtable(L);
    lua_pushstring(L, path);
    lua_setfield(L, -2, "script");
    char err[512];
    if (!lua_action || lua_action->parse(L, 1, &state, err, sizeof err) < 0) {
        fprintf(stderr, "fuzz_mime: %s\n", lua_action ? err : "no lua action");
        abort();
    }
    lua_close(L);
    unlink(path);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct message *m = message_new(NULL);
    strcpy(m->env.qid, "FUZZ");
    m->env.mail_from = strdup("sender@example.net");
    m->env.helo = strdup("client.example.net");
    strcpy(m->env.client_ip, "192.0.2.1");
    message_add_rcpt(m, "user@example.test");
    buf_append(&m->body, (const char *)data, size);
    size_t idx = 0;
    struct rcpt_outcome out = {0};
    struct action_ctx ctx = {
        .msg = m, .rule_name = "fuzz", .rcpts = &idx, .nrcpts = 1, .outcomes = &out};
    if (lua_action->run(state, &ctx) == ACTION_FAILED && strstr(ctx.error, "INVARIANT")) {
        fprintf(stderr, "fuzz_mime: %s\n", ctx.error);
        abort();
    }
    message_free(m);
    return 0;
}
