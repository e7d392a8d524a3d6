/* Allocation that never fails upward: on exhaustion the process logs and exits (Postfix's
 * mymalloc contract), so callers need no NULL checks. xfree-style helpers accept NULL. */
#ifndef SLUICE_XALLOC_H
#define SLUICE_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* Returns a newly allocated string (caller frees) formatted like printf. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Grows *arr (element size elem) so that index `need` fits; *cap is updated. */
void *xgrow(void *arr, size_t elem, size_t *cap, size_t need);

#endif
