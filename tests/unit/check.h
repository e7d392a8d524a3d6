/* A tiny assertion kit for the unit tests: every CHECK counts, a failure prints where and why
 * and the run goes on, so one run shows every broken case. CHECK_DONE() prints the summary line
 * "unit: N passed, M failed" and is the test's exit status (non-zero on any failure). */
#ifndef SLUICE_TEST_CHECK_H
#define SLUICE_TEST_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_passed, check_failed;

static inline void check_report(int ok, const char *file, int line, const char *what)
{
    if (ok) {
        check_passed++;
        return;
    }
    check_failed++;
    fprintf(stderr, "%s:%d: check failed: %s\n", file, line, what);
}

#define CHECK(cond) check_report(!!(cond), __FILE__, __LINE__, #cond)

/* Integers compared with both values shown on failure. */
#define CHECK_INT(got, want)                                                                       \
    do {                                                                                           \
        long long g_ = (long long)(got), w_ = (long long)(want);                                   \
        if (g_ != w_)                                                                              \
            fprintf(stderr, "  %s = %lld, expected %lld\n", #got, g_, w_);                         \
        check_report(g_ == w_, __FILE__, __LINE__, #got " == " #want);                             \
    } while (0)

/* NUL-terminated strings; NULL equals only NULL. */
#define CHECK_STR(got, want)                                                                       \
    do {                                                                                           \
        const char *g_ = (got), *w_ = (want);                                                      \
        int ok_ = (g_ == NULL || w_ == NULL) ? g_ == w_ : strcmp(g_, w_) == 0;                     \
        if (!ok_)                                                                                  \
            fprintf(stderr, "  %s = \"%s\", expected \"%s\"\n", #got, g_ ? g_ : "(null)",          \
                    w_ ? w_ : "(null)");                                                           \
        check_report(ok_, __FILE__, __LINE__, #got " == " #want);                                  \
    } while (0)

/* The string starts with prefix (reply codes: "550 5.5.2"). */
#define CHECK_PREFIX(got, prefix)                                                                  \
    do {                                                                                           \
        const char *g_ = (got), *p_ = (prefix);                                                    \
        int ok_ = g_ != NULL && strncmp(g_, p_, strlen(p_)) == 0;                                  \
        if (!ok_)                                                                                  \
            fprintf(stderr, "  %s = \"%s\", expected prefix \"%s\"\n", #got, g_ ? g_ : "(null)",   \
                    p_);                                                                           \
        check_report(ok_, __FILE__, __LINE__, #got " starts with " #prefix);                       \
    } while (0)

/* Byte strings of known length. */
#define CHECK_MEM(got, gotlen, want, wantlen)                                                      \
    do {                                                                                           \
        size_t gl_ = (gotlen), wl_ = (wantlen);                                                    \
        int ok_ = gl_ == wl_ && memcmp((got), (want), gl_) == 0;                                   \
        if (!ok_)                                                                                  \
            fprintf(stderr, "  %s: %zu bytes, expected %zu bytes\n", #got, gl_, wl_);              \
        check_report(ok_, __FILE__, __LINE__, #got " == " #want);                                  \
    } while (0)

#define CHECK_DONE()                                                                               \
    (printf("unit: %d passed, %d failed\n", check_passed, check_failed), check_failed ? 1 : 0)

#endif
