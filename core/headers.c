/* The header section reader; the rules it applies are in headers.h. */
#include "core/headers.h"
#include "core/xalloc.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

static size_t line_end(const char *d, size_t len, size_t pos)
{
    const char *nl = memchr(d + pos, '\n', len - pos);
    return nl ? (size_t)(nl - d) + 1 : len;
}

static bool is_wsp(char c)
{
    return c == ' ' || c == '\t';
}

/* Whether the line [pos, end) starts a field: "ftext+ WSP* :". */
static bool field_line(const char *d, size_t pos, size_t end, size_t *name_len, size_t *colon)
{
    size_t i = pos;
    while (i < end && (unsigned char)d[i] > ' ' && (unsigned char)d[i] < 0x7f && d[i] != ':')
        i++;
    if (i == pos)
        return false;
    *name_len = i - pos;
    while (i < end && is_wsp(d[i]))
        i++;
    if (i == end || d[i] != ':')
        return false;
    *colon = i;
    return true;
}

/* A line with a NUL, or a CR that is not part of its line end, cannot be a header line
 * (RFC 5322 §2.2: CR and LF only together). */
static bool bad_line(const char *d, size_t pos, size_t end)
{
    size_t n = end - pos;
    if (n && d[end - 1] == '\n')
        n -= n >= 2 && d[end - 2] == '\r' ? 2 : 1;
    return memchr(d + pos, '\0', n) || memchr(d + pos, '\r', n);
}

void hdr_reader_init(struct hdr_reader *r, const char *msg, size_t len)
{
    r->msg = msg ? msg : "";
    r->len = msg ? len : 0;
    r->pos = 0;
    r->done = false;
}

bool hdr_reader_next(struct hdr_reader *r, struct hdr_field *f)
{
    if (r->done)
        return false;
    const char *d = r->msg;
    size_t len = r->len, pos = r->pos;
    if (pos >= len) {
        r->done = true;
        return false;
    }
    size_t end = line_end(d, len, pos), name_len, colon;
    if ((end - pos == 1 && d[pos] == '\n') ||
        (end - pos == 2 && d[pos] == '\r' && d[pos + 1] == '\n')) {
        r->pos = end; /* the empty line belongs to the header section */
        r->done = true;
        return false;
    }
    if (bad_line(d, pos, end) || !field_line(d, pos, end, &name_len, &colon)) {
        r->done = true; /* not a field: the body starts at this line */
        return false;
    }
    size_t fend = end;
    while (fend < len && is_wsp(d[fend])) {
        size_t e = line_end(d, len, fend);
        if (bad_line(d, fend, e))
            break;
        fend = e;
    }
    f->off = pos;
    f->len = fend - pos;
    f->name_len = name_len;
    f->value_off = colon + 1;
    r->pos = fend;
    return true;
}

void headers_parse(const char *msg, size_t len, struct hdr_list *l)
{
    struct hdr_reader r;
    struct hdr_field f;
    size_t cap = 0;
    l->f = NULL;
    l->n = 0;
    hdr_reader_init(&r, msg, len);
    while (hdr_reader_next(&r, &f)) {
        l->f = xgrow(l->f, sizeof *l->f, &cap, l->n);
        l->f[l->n++] = f;
    }
    l->body_off = r.pos;
}

bool header_is(const char *msg, const struct hdr_field *f, const char *name)
{
    return f->name_len == strlen(name) && strncasecmp(msg + f->off, name, f->name_len) == 0;
}

void header_unfold(const char *msg, const struct hdr_field *f, struct buf *out)
{
    size_t v = f->value_off, end = f->off + f->len;
    while (v < end && (is_wsp(msg[v]) || msg[v] == '\r' || msg[v] == '\n'))
        v++;
    while (end > v && (is_wsp(msg[end - 1]) || msg[end - 1] == '\r' || msg[end - 1] == '\n'))
        end--;
    while (v < end) {
        size_t run = v;
        while (run < end && msg[run] != '\r' && msg[run] != '\n')
            run++;
        buf_append(out, msg + v, run - v);
        v = run;
        while (v < end && (msg[v] == '\r' || msg[v] == '\n'))
            v++;
    }
    buf_cstr(out);
}

char *header_value(const char *msg, const struct hdr_field *f)
{
    struct buf b = {0};
    header_unfold(msg, f, &b);
    buf_cstr(&b);
    return b.data; /* buf_cstr allocated it */
}

size_t headers_length(const char *msg, size_t len)
{
    struct hdr_reader r;
    struct hdr_field f;
    hdr_reader_init(&r, msg, len);
    while (hdr_reader_next(&r, &f))
        ;
    return r.pos;
}

bool header_find(const char *msg, size_t len, const char *name, int nth, struct buf *out)
{
    struct hdr_reader r;
    struct hdr_field f;
    hdr_reader_init(&r, msg, len);
    while (hdr_reader_next(&r, &f)) {
        if (header_is(r.msg, &f, name) && nth-- == 0) {
            header_unfold(r.msg, &f, out);
            return true;
        }
    }
    return false;
}

size_t headers_remove_named(struct buf *msg, const char *name)
{
    struct hdr_reader r;
    struct hdr_field f;
    struct buf out = {0};
    size_t copied = 0, removed = 0;
    hdr_reader_init(&r, msg->data, msg->len);
    while (hdr_reader_next(&r, &f)) {
        if (!header_is(msg->data, &f, name))
            continue;
        buf_append(&out, msg->data + copied, f.off - copied);
        copied = f.off + f.len;
        removed++;
    }
    if (removed) {
        buf_append(&out, msg->data + copied, msg->len - copied);
        buf_free(msg);
        *msg = out;
    }
    return removed;
}

int header_each_address(const char *value, header_addr_fn fn, void *arg)
{
    int count = 0;
    bool go = true;
    char small[512];
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
            size_t n = (size_t)(e - start);
            if (n >= sizeof small)
                n = 0;
            memcpy(small, start, n);
            small[n] = '\0';
            if (go)
                go = fn(small, arg);
            count++;
        }
        p = *q ? q + 1 : q;
    }
    return count;
}

struct first {
    char *out;
    size_t outlen;
};

static bool take_first(const char *addr, void *arg)
{
    struct first *f = arg;
    if (strlen(addr) < f->outlen)
        strcpy(f->out, addr);
    return false;
}

int header_first_address(const char *value, char *out, size_t outlen)
{
    struct first f = {out, outlen};
    out[0] = '\0';
    return header_each_address(value, take_first, &f);
}

struct author_walk {
    header_addr_fn fn;
    void *arg;
    bool stopped;
};

static bool author_step(const char *addr, void *arg)
{
    struct author_walk *w = arg;
    if (!w->stopped)
        w->stopped = !w->fn(addr, w->arg);
    return !w->stopped;
}

int headers_each_author(const char *msg, size_t len, header_addr_fn fn, void *arg)
{
    struct hdr_reader r;
    struct hdr_field f;
    struct buf v = {0};
    struct author_walk w = {fn, arg, false};
    int count = 0;
    hdr_reader_init(&r, msg, len);
    while (hdr_reader_next(&r, &f)) {
        if (!header_is(r.msg, &f, "From"))
            continue;
        buf_reset(&v);
        header_unfold(r.msg, &f, &v);
        count += header_each_address(buf_cstr(&v), author_step, &w);
    }
    buf_free(&v);
    return count;
}
