/* Allocation wrappers: exit cleanly on exhaustion instead of propagating NULL. */
#include "core/xalloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void oom(size_t n)
{
    fprintf(stderr, "sluice: fatal: out of memory allocating %zu bytes\n", n);
    _exit(75);
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom(n);
    return p;
}

void *xcalloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p)
        oom(count * size);
    return p;
}

void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom(n);
    return q;
}

char *xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *out = NULL;
    int n = vasprintf(&out, fmt, ap);
    va_end(ap);
    if (n < 0)
        oom(0);
    return out;
}

void *xgrow(void *arr, size_t elem, size_t *cap, size_t need)
{
    if (need < *cap)
        return arr;
    size_t ncap = *cap ? *cap * 2 : 8;
    while (ncap <= need)
        ncap *= 2;
    arr = xrealloc(arr, ncap * elem);
    *cap = ncap;
    return arr;
}
