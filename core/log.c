/* Structured logging. Lines are assembled in memory and written with one fwrite so that
 * concurrent threads never interleave within a line. */
#include "core/log.h"
#include "core/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/time.h>

static int log_json;
static enum log_level log_max = LOG_INFO;

static const char *level_name[] = {"error", "warning", "info", "debug"};

void log_set_json(int json)
{
    log_json = json;
}

void log_set_level(enum log_level max)
{
    log_max = max;
}

static void put_timestamp(struct buf *b)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char ts[32];
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    buf_printf(b, "%s.%03dZ", ts, (int)(tv.tv_usec / 1000));
}

/* Length of the valid UTF-8 sequence at p (1-4), or 0 when p does not start one. */
static size_t utf8_len(const unsigned char *p)
{
    size_t n = p[0] >= 0xf0 && p[0] <= 0xf4   ? 4
               : p[0] >= 0xe0                 ? 3
               : p[0] >= 0xc2 && p[0] <= 0xdf ? 2
                                              : 0;
    if (p[0] >= 0xf5)
        n = 0;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    return n;
}

/* Client-supplied bytes (HELO, addresses) may be anything: invalid UTF-8 becomes U+FFFD so
 * every line stays valid JSON. */
static void put_json_string(struct buf *b, const char *s)
{
    buf_puts(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            buf_printf(b, "\\%c", *p);
        } else if (*p < 0x20 || *p == 0x7f) {
            buf_printf(b, "\\u%04x", *p);
        } else if (*p < 0x80) {
            buf_append(b, p, 1);
        } else {
            size_t n = utf8_len(p);
            if (n == 0) {
                buf_puts(b, "\\ufffd");
            } else {
                buf_append(b, p, n);
                p += n - 1;
            }
        }
    }
    buf_puts(b, "\"");
}

/* Plain values are quoted when they hold spaces, quotes or control bytes. */
static void put_plain_value(struct buf *b, const char *s)
{
    int quote = *s == '\0' || strpbrk(s, " \"=\t") != NULL;
    for (const unsigned char *p = (const unsigned char *)s; *p && !quote; p++)
        if (*p < 0x20 || *p == 0x7f)
            quote = 1;
    if (!quote) {
        buf_puts(b, s);
        return;
    }
    put_json_string(b, s);
}

static void emit(struct buf *b)
{
    buf_puts(b, "\n");
    fwrite(b->data, 1, b->len, stderr);
    fflush(stderr);
    buf_free(b);
}

int log_enabled(enum log_level lvl)
{
    return lvl <= log_max;
}

static void put_json_value(struct buf *b, const struct log_field *f)
{
    switch (f->type) {
    case LOG_T_INT:
    case LOG_T_SECS:
        buf_printf(b, "%lld", f->num);
        return;
    case LOG_T_BOOL:
        buf_puts(b, f->num ? "true" : "false");
        return;
    case LOG_T_LIST:
        buf_puts(b, "[");
        for (size_t i = 0; i < f->nitems; i++) {
            if (i)
                buf_puts(b, ",");
            put_json_string(b, f->items[i] ? f->items[i] : "");
        }
        buf_puts(b, "]");
        return;
    case LOG_T_CSV: {
        buf_puts(b, "[");
        struct buf part = {0};
        for (const char *p = f->val; *p;) {
            const char *comma = strchr(p, ',');
            size_t n = comma ? (size_t)(comma - p) : strlen(p);
            buf_free(&part);
            buf_append(&part, p, n);
            if (p != f->val)
                buf_puts(b, ",");
            put_json_string(b, buf_cstr(&part));
            p += n + (comma ? 1 : 0);
        }
        buf_free(&part);
        buf_puts(b, "]");
        return;
    }
    case LOG_T_STR:
        break;
    }
    put_json_string(b, f->val);
}

static void put_plain_field(struct buf *b, const struct log_field *f)
{
    switch (f->type) {
    case LOG_T_INT:
        buf_printf(b, "%lld", f->num);
        return;
    case LOG_T_SECS:
        buf_printf(b, "%llds", f->num);
        return;
    case LOG_T_BOOL:
        buf_puts(b, f->num ? "true" : "false");
        return;
    case LOG_T_LIST: {
        struct buf joined = {0};
        for (size_t i = 0; i < f->nitems; i++)
            buf_printf(&joined, "%s%s", i ? (f->sep ? f->sep : ",") : "",
                       f->items[i] ? f->items[i] : "");
        put_plain_value(b, buf_cstr(&joined));
        buf_free(&joined);
        return;
    }
    case LOG_T_CSV:
    case LOG_T_STR:
        break;
    }
    put_plain_value(b, f->val);
}

void log_fields(enum log_level lvl, const char *event, const struct log_field *kv, size_t n)
{
    if (lvl > log_max)
        return;
    struct buf b = {0};
    if (log_json) {
        buf_puts(&b, "{\"ts\":\"");
        put_timestamp(&b);
        buf_printf(&b, "\",\"level\":\"%s\",\"event\":", level_name[lvl]);
        put_json_string(&b, event);
        for (size_t i = 0; i < n; i++) {
            if (!kv[i].val)
                continue;
            buf_puts(&b, ",");
            put_json_string(&b, kv[i].key);
            buf_puts(&b, ":");
            put_json_value(&b, &kv[i]);
        }
        buf_puts(&b, "}");
    } else {
        put_timestamp(&b);
        buf_printf(&b, " %s %s", level_name[lvl], event);
        for (size_t i = 0; i < n; i++) {
            if (!kv[i].val)
                continue;
            buf_printf(&b, " %s=", kv[i].key);
            put_plain_field(&b, &kv[i]);
        }
    }
    emit(&b);
}

void log_event(enum log_level lvl, const char *event, const struct log_kv *kv, size_t n)
{
    if (lvl > log_max)
        return;
    struct log_field f[64];
    if (n > sizeof f / sizeof f[0])
        n = sizeof f / sizeof f[0];
    for (size_t i = 0; i < n; i++)
        f[i] = (struct log_field)LOG_STR(kv[i].key, kv[i].val);
    log_fields(lvl, event, f, n);
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
    if (lvl > log_max)
        return;
    char text[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    struct log_kv kv = {"msg", text};
    log_event(lvl, "log", &kv, 1);
}

void log_msg_with(enum log_level lvl, const char *key, const char *val, const char *fmt, ...)
{
    if (lvl > log_max)
        return;
    char text[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    struct log_kv kv[] = {{key, val}, {"msg", text}};
    log_event(lvl, "log", kv, 2);
}
