/* Log lines: JSON stays valid (escapes, control bytes, invalid UTF-8 as U+FFFD, valid UTF-8
 * kept), plain values are quoted when they need it. */
#include "check.h"
#include "core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Runs one log_event with stderr sent to a temporary file; returns the line (static). */
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
    return CHECK_DONE();
}
