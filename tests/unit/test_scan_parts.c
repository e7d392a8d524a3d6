/* The pure parts of scanning: rspamd's action to SES verdict mapping, and removing named header
 * fields (forged X-Sluice-* verdicts) from raw message bytes without touching the body. */
#include "core/headers.h"
#include "scan/scanners.h"

#include <stdio.h>
#include <string.h>

static int failures, checks;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        checks++;                                                                                  \
        if (!(cond)) {                                                                             \
            failures++;                                                                            \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
        }                                                                                          \
    } while (0)

static void check_remove(const char *in, const char *name, size_t removed, const char *want)
{
    struct buf b = {0};
    buf_puts(&b, in);
    size_t n = headers_remove_named(&b, name);
    CHECK(n == removed);
    CHECK(b.len == strlen(want) && memcmp(b.data, want, b.len) == 0);
    if (b.len != strlen(want) || memcmp(b.data, want, b.len) != 0)
        fprintf(stderr, "  removing %s from %s\n  got  [%.*s]\n  want [%s]\n", name, in, (int)b.len,
                b.data, want);
    buf_free(&b);
}

int main(void)
{
    CHECK(rspamd_action_verdict("no action") == VERDICT_PASS);
    CHECK(rspamd_action_verdict("greylist") == VERDICT_PASS);
    CHECK(rspamd_action_verdict("add header") == VERDICT_GRAY);
    CHECK(rspamd_action_verdict("rewrite subject") == VERDICT_GRAY);
    CHECK(rspamd_action_verdict("soft reject") == VERDICT_GRAY);
    CHECK(rspamd_action_verdict("reject") == VERDICT_FAIL);
    CHECK(rspamd_action_verdict("discard") == VERDICT_PROCESSING_FAILED);
    CHECK(rspamd_action_verdict("") == VERDICT_PROCESSING_FAILED);

    const char *name = "X-Sluice-Spam-Verdict";
    check_remove("A: 1\r\nX-Sluice-Spam-Verdict: PASS\r\nB: 2\r\n\r\nbody\r\n", name, 1,
                 "A: 1\r\nB: 2\r\n\r\nbody\r\n");
    /* first line, folded, any case, several times */
    check_remove("x-sluice-spam-verdict: PASS\r\n\tmore\r\nA: 1\r\nX-SLUICE-SPAM-VERDICT:FAIL\r\n"
                 "\r\nbody\r\n",
                 name, 2, "A: 1\r\n\r\nbody\r\n");
    /* the body is not the header block */
    check_remove("A: 1\r\n\r\nX-Sluice-Spam-Verdict: PASS\r\n", name, 0,
                 "A: 1\r\n\r\nX-Sluice-Spam-Verdict: PASS\r\n");
    /* a longer name with the same prefix, and a value naming it, stay */
    check_remove("X-Sluice-Spam-Verdicts: x\r\nA: X-Sluice-Spam-Verdict: y\r\n\r\n", name, 0,
                 "X-Sluice-Spam-Verdicts: x\r\nA: X-Sluice-Spam-Verdict: y\r\n\r\n");
    /* no body at all, last field without CRLF */
    check_remove("A: 1\r\nX-Sluice-Spam-Verdict: PASS", name, 1, "A: 1\r\n");
    check_remove("", name, 0, "");

    printf("%d checks, %d failures\n", checks, failures);
    return failures ? 1 : 0;
}
