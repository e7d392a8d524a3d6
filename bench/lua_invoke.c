/* Micro-benchmark: the cost of one sync invocation of the lua action with a trivial handler
 * (fresh sandboxed state, stdlib, bytecode load, SES event and msg object, the call, close),
 * and of a handler that reads a header and returns a table. Run with `make bench-lua`; the
 * budget is well under 50 us per invocation. */
#include "actions/action.h"
#include "core/message.h"
#include "rules/ruleset.h"

#include <gmime/gmime.h>
#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void *load(const struct action_type *t, const char *path)
{
    lua_State *L = luaL_newstate();
    lua_newtable(L);
    lua_pushstring(L, path);
    lua_setfield(L, -2, "script");
    void *state = NULL;
    char err[512];
    if (t->parse(L, 1, &state, err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    lua_close(L);
    return state;
}

static void bench(const char *label, const char *source)
{
    char path[] = "/tmp/sluice-bench-XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    fputs(source, f);
    fclose(f);
    const struct action_type *t = action_type_find("lua");
    void *state = load(t, path);
    unlink(path);

    struct message *m = message_new(NULL);
    strcpy(m->env.qid, "BENCH");
    m->env.mail_from = strdup("sender@example.net");
    m->env.helo = strdup("client.example.net");
    strcpy(m->env.client_ip, "192.0.2.1");
    message_add_rcpt(m, "user@example.test");
    const char *body = "From: Sender <sender@example.net>\r\nTo: user@example.test\r\n"
                       "Subject: hello\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n"
                       "Message-ID: <1@example.net>\r\nX-Tenant: acme\r\n\r\nHello.\r\n";
    buf_append(&m->body, body, strlen(body));
    size_t idx = 0;
    struct rcpt_outcome out = {0};
    struct action_ctx ctx = {
        .msg = m, .rule_name = "bench", .rcpts = &idx, .nrcpts = 1, .outcomes = &out};

    /* The machine is shared: the best of 20 rounds is the cost, the median shows the noise. */
    enum { ROUNDS = 20, N = 1000 };
    double r[ROUNDS];
    for (int i = 0; i < 500; i++) /* warm-up */
        t->run(state, &ctx);
    for (int k = 0; k < ROUNDS; k++) {
        double t0 = now();
        for (int i = 0; i < N; i++) {
            if (t->run(state, &ctx) == ACTION_FAILED) {
                fprintf(stderr, "failed: %s\n", ctx.error);
                exit(1);
            }
        }
        r[k] = (now() - t0) / N * 1e6;
    }
    qsort(r, ROUNDS, sizeof r[0], cmp_double);
    printf("%-36s best %6.2f us, median %6.2f us per invocation\n", label, r[0], r[ROUNDS / 2]);
    t->free_state(state);
    message_free(m);
}

int main(void)
{
    g_mime_init();
    bench("trivial handler (return CONTINUE)",
          "function handler(event, msg) return \"CONTINUE\" end\n");
    bench("header read + table result", "function handler(event, msg)\n"
                                        "  local t = msg:header('X-Tenant')\n"
                                        "  if event.Records[1].ses.receipt.spfVerdict.status == "
                                        "'FAIL' then return 'STOP_RULE' end\n"
                                        "  return { disposition = 'CONTINUE' }\n"
                                        "end\n");
    g_mime_shutdown();
    return 0;
}
