/* Log lines: JSON stays valid (escapes, control bytes, invalid UTF-8 as U+FFFD, valid UTF-8
 * kept), plain values are quoted when they need it. */
#include "check.h"
#include "core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Runs one log_fields with stderr sent to a temporary file; returns the line (static). */
static const char *logged_fields(int json, const struct log_field *f, size_t n)
{
    static char line[4096];
    fflush(stderr);
    int saved = dup(2);
    FILE *tmp = tmpfile();
    dup2(fileno(tmp), 2);
    log_set_json(json);
    log_fields(LOG_INFO, "test", f, n);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(tmp);
    size_t got = fread(line, 1, sizeof line - 1, tmp);
    line[got] = '\0';
    fclose(tmp);
    return line;
}

/* The same for one string field through log_event. */
static const char *logged(int json, const char *key, const char *val)
{
    static char line[4096];
    fflush(stderr);
    int saved = dup(2);
    FILE *tmp = tmpfile();
    dup2(fileno(tmp), 2);
    log_set_json(json);
    struct log_kv kv = {key, val};
    log_event(LOG_INFO, "test", &kv, 1);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(tmp);
    size_t n = fread(line, 1, sizeof line - 1, tmp);
    line[n] = '\0';
    fclose(tmp);
    return line;
}

int main(void)
{
    const char *l = logged(1, "v", "a\"b\\c\x01\xff\xc3\xa9!");
    CHECK(strstr(l, "\"v\":\"a\\\"b\\\\c\\u0001\\ufffd\xc3\xa9!\"") != NULL);
    CHECK(strstr(l, "\"event\":\"test\"") != NULL);
    l = logged(1, "v", "\xe2\x82"); /* truncated sequence */
    CHECK(strstr(l, "\"v\":\"\\ufffd\\ufffd\"") != NULL);
    l = logged(0, "v", "two words");
    CHECK(strstr(l, " test v=\"two words\"") != NULL);
    l = logged(0, "v", "plain");
    CHECK(strstr(l, " test v=plain") != NULL);

    /* Typed fields: numbers and booleans bare in JSON, lists as arrays; plain as before. */
    const char *rcpts[] = {"a@x.test", "b\"@x.test"};
    const char *paths[] = {"p/new/1,S=3", "q/new/2"};
    struct log_field f[] = {
        LOG_INT("size", 1234),     LOG_INT_IF("port", 25, 0),
        LOG_SECS("duration", 7),   LOG_BOOL("proxy", 1),
        LOG_LIST("to", rcpts, 2),  LOG_LIST("none", rcpts, 0),
        LOG_CSV("rules", "r1,r2"), LOG_CSV("empty", ""),
        LOG_CSV("gone", NULL),     LOG_LIST_SP_IF("stored", paths, 2, 1),
        LOG_STR("s", "x y"),
    };
    size_t nf = sizeof f / sizeof f[0];
    l = logged_fields(1, f, nf);
    CHECK(strstr(l, "\"size\":1234,\"duration\":7,\"proxy\":true,"
                    "\"to\":[\"a@x.test\",\"b\\\"@x.test\"],\"none\":[],"
                    "\"rules\":[\"r1\",\"r2\"],\"empty\":[],"
                    "\"stored\":[\"p/new/1,S=3\",\"q/new/2\"],\"s\":\"x y\"}") != NULL);
    CHECK(strstr(l, "port") == NULL && strstr(l, "gone") == NULL);
    l = logged_fields(0, f, nf);
    CHECK(strstr(l,
                 " test size=1234 duration=7s proxy=true to=\"a@x.test,b\\\"@x.test\" "
                 "none=\"\" rules=r1,r2 empty=\"\" stored=\"p/new/1,S=3 q/new/2\" s=\"x y\"\n") !=
          NULL);
    return CHECK_DONE();
}
