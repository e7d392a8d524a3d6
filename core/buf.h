/* A growable byte buffer. The owner of a struct buf frees it with buf_free(). */
#ifndef SLUICE_BUF_H
#define SLUICE_BUF_H

#include <stddef.h>

struct buf {
    char *data;
    size_t len;
    size_t cap;
};

void buf_append(struct buf *b, const void *p, size_t n);
void buf_puts(struct buf *b, const char *s);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Ensures data[len] == '\0' without counting it, so data can be used as a C string. */
const char *buf_cstr(struct buf *b);
void buf_reset(struct buf *b);
void buf_free(struct buf *b);

#endif
