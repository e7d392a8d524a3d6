/* The recipient index must find exactly the rules a linear scan with rcpt_cond_match finds,
 * in rule order: checked over a generated rule set and every address shape. */
#include "core/xalloc.h"
#include "rules/rcpt_index.h"
#include "rules/ruleset.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures, checks;

static struct rule *rule_with(const char *const *conds, size_t n)
{
    struct rule *r = xcalloc(1, sizeof *r);
    r->rcpts = xcalloc(n ? n : 1, sizeof *r->rcpts);
    char err[256];
    for (size_t i = 0; i < n; i++) {
        if (rcpt_cond_parse(conds[i], &r->rcpts[i], err, sizeof err) < 0) {
            fprintf(stderr, "bad condition %s: %s\n", conds[i], err);
            exit(2);
        }
        r->nrcpts++;
    }
    return r;
}

int main(void)
{
    static const char *const c0[] = {"user@example.test"};
    static const char *const c1[] = {"example.test"};
    static const char *const c2[] = {".example.test"};
    static const char *const c3[] = {"User+News@Example.Test", "other.test"};
    static const char *const c4[] = {"sub.example.test", "user@example.test"};
    static const char *const c5[] = {".test"};
    static const char *const c6[] = {"x@a.b.example.test"};
    struct rule *rules[] = {
        rule_with(c0, 1), rule_with(c1, 1), rule_with(NULL, 0), rule_with(c2, 1),
        rule_with(c3, 2), rule_with(c4, 2), rule_with(c5, 1),   rule_with(c6, 1),
    };
    size_t nrules = sizeof rules / sizeof rules[0];
    struct rcpt_index *ix = rcpt_index_build(rules, nrules);
    static const char *const addrs[] = {
        "user@example.test",       "USER@EXAMPLE.TEST",        "user+x@example.test",
        "user+news@example.test",  "user+news+y@example.test", "user+newsy@example.test",
        "other@example.test",      "a@sub.example.test",       "user@sub.example.test",
        "x@a.b.example.test",      "x+1@A.B.example.test",     "z@other.test",
        "z@elsewhere.example",     "+x@example.test",          "user@test",
        "u@deep.a.b.example.test",
    };
    uint32_t *out = NULL;
    size_t cap = 0;
    for (size_t a = 0; a < sizeof addrs / sizeof addrs[0]; a++) {
        size_t n = rcpt_index_lookup(ix, addrs[a], &out, &cap);
        size_t k = 0;
        int ok = 1;
        for (size_t r = 0; r < nrules; r++) {
            if (!rule_matches_rcpt(rules[r], addrs[a]))
                continue;
            if (k >= n || out[k] != r)
                ok = 0;
            k++;
        }
        ok = ok && k == n;
        checks++;
        if (!ok) {
            failures++;
            fprintf(stderr, "FAIL: %s: index found %zu rules, scan %zu\n", addrs[a], n, k);
        }
    }
    free(out);
    rcpt_index_free(ix);
    for (size_t r = 0; r < nrules; r++)
        rule_free(rules[r]);
    printf("unit: %d passed, %d failed\n", checks - failures, failures);
    return failures != 0;
}
