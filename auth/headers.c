/* Header field splitting (RFC 5322 §2.2). */
#include "auth/headers.h"
#include "core/xalloc.h"

#include <string.h>
#include <strings.h>

static size_t line_end(const char *d, size_t len, size_t pos)
{
    const char *nl = memchr(d + pos, '\n', len - pos);
    return nl ? (size_t)(nl - d) + 1 : len;
}

void headers_parse(const char *data, size_t len, struct hdr_list *l)
{
    size_t cap = 0, pos = 0;
    l->f = NULL;
    l->n = 0;
    while (pos < len) {
        size_t end = line_end(data, len, pos);
        if (data[pos] == '\r' || data[pos] == '\n') { /* the empty line */
            pos = end;
            break;
        }
        const char *colon = memchr(data + pos, ':', end - pos);
        if (data[pos] == ' ' || data[pos] == '\t' || !colon)
            break; /* a continuation without a field, or not a header: the body starts */
        size_t start = pos;
        pos = end;
        while (pos < len && (data[pos] == ' ' || data[pos] == '\t'))
            pos = line_end(data, len, pos);
        l->f = xgrow(l->f, sizeof *l->f, &cap, l->n);
        l->f[l->n].off = start;
        l->f[l->n].len = pos - start;
        l->f[l->n].name_len = (size_t)(colon - (data + start));
        l->n++;
    }
    l->body_off = pos;
}

bool header_is(const char *data, const struct hdr_field *f, const char *name)
{
    size_t n = f->name_len;
    while (n > 0 && (data[f->off + n - 1] == ' ' || data[f->off + n - 1] == '\t'))
        n--; /* "Name :" is obsolete syntax but seen */
    return n == strlen(name) && strncasecmp(data + f->off, name, n) == 0;
}

char *header_value(const char *data, const struct hdr_field *f)
{
    const char *p = data + f->off + f->name_len + 1;
    const char *end = data + f->off + f->len;
    char *out = xmalloc((size_t)(end - p) + 1);
    size_t o = 0;
    for (; p < end; p++)
        if (*p != '\r' && *p != '\n')
            out[o++] = *p;
    out[o] = '\0';
    size_t skip = strspn(out, " \t");
    memmove(out, out + skip, o - skip + 1);
    o -= skip;
    while (o > 0 && (out[o - 1] == ' ' || out[o - 1] == '\t'))
        out[--o] = '\0';
    return out;
}
