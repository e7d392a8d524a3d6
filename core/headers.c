/* Header block access on raw message bytes. */
#include "core/headers.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

size_t headers_length(const char *msg, size_t len)
{
    if (len >= 2 && msg[0] == '\r' && msg[1] == '\n')
        return 2;
    for (size_t i = 0; i + 3 < len; i++)
        if (msg[i] == '\r' && msg[i + 1] == '\n' && msg[i + 2] == '\r' && msg[i + 3] == '\n')
            return i + 4;
    return len;
}

bool header_next(const char *msg, size_t len, size_t *pos, struct buf *name, struct buf *value)
{
    size_t hlen = headers_length(msg, len);
    size_t i = *pos;
    buf_reset(name);
    buf_reset(value);
    while (i < hlen) {
        size_t eol = i;
        while (eol < hlen && msg[eol] != '\n')
            eol++;
        const char *colon = memchr(msg + i, ':', eol - i);
        if (!colon || msg[i] == ' ' || msg[i] == '\t' || msg[i] == '\r') {
            i = eol + 1; /* stray continuation or junk line: skip */
            continue;
        }
        buf_append(name, msg + i, (size_t)(colon - (msg + i)));
        size_t v = (size_t)(colon - msg) + 1, end = eol;
        while (end + 1 < hlen && (msg[end + 1] == ' ' || msg[end + 1] == '\t')) {
            end++;
            while (end < hlen && msg[end] != '\n')
                end++;
        }
        while (v < end && (msg[v] == ' ' || msg[v] == '\t'))
            v++;
        for (size_t k = v; k < end; k++)
            if (msg[k] != '\r' && msg[k] != '\n')
                buf_append(value, &msg[k], 1);
        while (value->len &&
               (value->data[value->len - 1] == ' ' || value->data[value->len - 1] == '\t'))
            value->len--;
        *pos = end + 1;
        buf_cstr(name);
        buf_cstr(value);
        return true;
    }
    *pos = hlen;
    return false;
}

bool header_find(const char *msg, size_t len, const char *name, int nth, struct buf *out)
{
    struct buf n = {0}, v = {0};
    size_t pos = 0;
    bool found = false;
    while (!found && header_next(msg, len, &pos, &n, &v)) {
        if (strcasecmp(n.data, name) == 0 && nth-- == 0) {
            buf_append(out, v.data, v.len);
            found = true;
        }
    }
    buf_free(&n);
    buf_free(&v);
    return found;
}

int header_first_address(const char *value, char *out, size_t outlen)
{
    int count = 0;
    out[0] = '\0';
    const char *p = value;
    while (*p) {
        /* One mailbox: skip quoted display names and comments, prefer <angle-addr>. */
        const char *start = NULL, *end = NULL;
        int depth = 0, quoted = 0;
        const char *q = p;
        for (; *q && (quoted || depth || *q != ','); q++) {
            if (*q == '\\' && q[1]) {
                q++;
            } else if (quoted) {
                quoted = *q != '"';
            } else if (*q == '"') {
                quoted = 1;
            } else if (*q == '(') {
                depth++;
            } else if (*q == ')' && depth) {
                depth--;
            } else if (!depth && *q == '<') {
                start = q + 1;
                end = strchr(start, '>');
            }
        }
        if (!start || !end || end > q) {
            start = p;
            end = q;
        }
        while (start < end && isspace((unsigned char)*start))
            start++;
        const char *e = start;
        while (e < end && *e != '(') /* a trailing comment is not part of the address */
            e++;
        while (e > start && isspace((unsigned char)e[-1]))
            e--;
        if (e > start && memchr(start, '@', (size_t)(e - start))) {
            if (count == 0 && (size_t)(e - start) < outlen) {
                memcpy(out, start, (size_t)(e - start));
                out[e - start] = '\0';
            }
            count++;
        }
        p = *q ? q + 1 : q;
    }
    return count;
}

size_t headers_remove_named(struct buf *msg, const char *name)
{
    size_t nl = strlen(name), removed = 0;
    size_t hlen = headers_length(msg->data, msg->len);
    size_t i = 0;
    while (i < hlen) {
        size_t end = i; /* one past the field's last line, continuation lines included */
        while (end < hlen && msg->data[end] != '\n')
            end++;
        while (end + 1 < hlen && (msg->data[end + 1] == ' ' || msg->data[end + 1] == '\t')) {
            end++;
            while (end < hlen && msg->data[end] != '\n')
                end++;
        }
        if (end < hlen)
            end++;
        if (end - i > nl && msg->data[i + nl] == ':' && strncasecmp(msg->data + i, name, nl) == 0) {
            memmove(msg->data + i, msg->data + end, msg->len - end);
            msg->len -= end - i;
            hlen -= end - i;
            removed++;
            continue;
        }
        i = end;
    }
    return removed;
}
