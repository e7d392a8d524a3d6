/* Micro-benchmark: ns per recipient to find the matching rules of a rule set of 10, 1,000 and
 * 100,000 rules (address, domain and subdomain conditions mixed), through the recipient index
 * that the evaluator and the RCPT check use. Prints a table; run with `make bench-rules`. */
#include "core/xalloc.h"
#include "rules/rcpt_index.h"
#include "rules/ruleset.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static struct rule **make_rules(size_t n)
{
    struct rule **rules = xcalloc(n, sizeof *rules);
    char text[128], err[256];
    for (size_t i = 0; i < n; i++) {
        struct rule *r = xcalloc(1, sizeof *r);
        r->rcpts = xcalloc(1, sizeof *r->rcpts);
        if (i % 10 == 9)
            snprintf(text, sizeof text, "tenant%zu.example", i);
        else if (i % 10 == 8)
            snprintf(text, sizeof text, ".tenant%zu.example", i);
        else
            snprintf(text, sizeof text, "user%zu@tenant%zu.example", i, i / 10);
        if (rcpt_cond_parse(text, &r->rcpts[0], err, sizeof err) < 0) {
            fprintf(stderr, "%s\n", err);
            exit(1);
        }
        r->nrcpts = 1;
        rules[i] = r;
    }
    return rules;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(void)
{
    static const size_t sizes[] = {10, 1000, 100000};
    printf("| rules | ns per recipient (index) | ns per recipient (linear scan) |\n");
    printf("|------:|-------------------------:|-------------------------------:|\n");
    for (size_t s = 0; s < 3; s++) {
        size_t n = sizes[s];
        struct rule **rules = make_rules(n);
        struct rcpt_index *ix = rcpt_index_build(rules, n);
        char addrs[64][96];
        for (int i = 0; i < 64; i++)
            snprintf(addrs[i], sizeof addrs[i], "user%zu+tag@tenant%zu.example",
                     (size_t)(i * 7919) % n, ((size_t)(i * 7919) % n) / 10);
        uint32_t *out = NULL;
        size_t cap = 0, found = 0;
        long iters = 2000000;
        double t0 = now();
        for (long i = 0; i < iters; i++)
            found += rcpt_index_lookup(ix, addrs[i & 63], &out, &cap);
        double indexed = (now() - t0) / (double)iters * 1e9;
        long scan_iters = n > 1000 ? 200 : 200000;
        t0 = now();
        for (long i = 0; i < scan_iters; i++)
            for (size_t r = 0; r < n; r++)
                found += rule_matches_rcpt(rules[r], addrs[i & 63]);
        double linear = (now() - t0) / (double)scan_iters * 1e9;
        printf("| %zu | %.0f | %.0f |\n", n, indexed, linear);
        if (found == 0)
            printf("(no matches: benchmark is broken)\n");
        free(out);
        rcpt_index_free(ix);
        for (size_t i = 0; i < n; i++)
            rule_free(rules[i]);
        free(rules);
    }
    return 0;
}
