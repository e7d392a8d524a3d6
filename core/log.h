/* Logging to stderr, one line per event, plain "key=value" or JSON (server { log_format }).
 * Safe to call from any thread. */
#ifndef SLUICE_LOG_H
#define SLUICE_LOG_H

#include <stddef.h>

enum log_level { LOG_ERR, LOG_WARN, LOG_INFO, LOG_DEBUG };

struct log_kv {
    const char *key;
    const char *val; /* NULL values are skipped */
};

/* How a typed field is written. Plain lines show every type as key=value; JSON lines keep the
 * type. */
enum log_type {
    LOG_T_STR,  /* val */
    LOG_T_INT,  /* num: a JSON number */
    LOG_T_SECS, /* num: a JSON number (seconds); plain with an "s" after it */
    LOG_T_BOOL, /* num != 0: a JSON boolean; plain "true"/"false" */
    LOG_T_LIST, /* items[0..nitems): a JSON array of strings; plain, joined with sep (",") */
    LOG_T_CSV,  /* val, comma separated: a JSON array of its parts ("" is []); plain as is */
};

/* A typed field, made with the macros below. */
struct log_field {
    const char *key;
    const char *val; /* NULL: the field is left out (the macros set "" for present non-strings) */
    enum log_type type;
    long long num;
    const char *const *items;
    size_t nitems;
    const char *sep; /* LOG_T_LIST in plain lines; NULL is "," */
};

#define LOG_STR(k, v)                                                                              \
    {                                                                                              \
        .key = (k), .val = (v), .type = LOG_T_STR                                                  \
    }
/* Left out unless present. */
#define LOG_INT_IF(k, v, present)                                                                  \
    {                                                                                              \
        .key = (k), .val = (present) ? "" : NULL, .type = LOG_T_INT, .num = (long long)(v)         \
    }
#define LOG_INT(k, v) LOG_INT_IF(k, v, 1)
#define LOG_SECS(k, v)                                                                             \
    {                                                                                              \
        .key = (k), .val = "", .type = LOG_T_SECS, .num = (long long)(v)                           \
    }
#define LOG_BOOL(k, v)                                                                             \
    {                                                                                              \
        .key = (k), .val = "", .type = LOG_T_BOOL, .num = (v) ? 1 : 0                              \
    }
#define LOG_LIST_IF(k, it, n, present)                                                             \
    {                                                                                              \
        .key = (k), .val = (present) ? "" : NULL, .type = LOG_T_LIST,                              \
        .items = (const char *const *)(it), .nitems = (n)                                          \
    }
#define LOG_LIST(k, it, n) LOG_LIST_IF(k, it, n, 1)
/* Items that may hold commas themselves (Maildir file names do): plain lines join them with
 * spaces. */
#define LOG_LIST_SP_IF(k, it, n, present)                                                          \
    {                                                                                              \
        .key = (k), .val = (present) ? "" : NULL, .type = LOG_T_LIST,                              \
        .items = (const char *const *)(it), .nitems = (n), .sep = " "                              \
    }
/* Left out when v is NULL. */
#define LOG_CSV(k, v)                                                                              \
    {                                                                                              \
        .key = (k), .val = (v), .type = LOG_T_CSV                                                  \
    }

void log_set_json(int json);
void log_set_level(enum log_level max);
/* Whether a line of lvl would be written (to skip building fields nobody reads). */
int log_enabled(enum log_level lvl);
/* A free-form line. */
void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A free-form line with one field before it (key=val; left out when val is NULL), such as the
 * session it belongs to. */
void log_msg_with(enum log_level lvl, const char *key, const char *val, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A structured line: event name plus string fields, in order (the first 64). */
void log_event(enum log_level lvl, const char *event, const struct log_kv *kv, size_t n);
/* The same with typed fields. */
void log_fields(enum log_level lvl, const char *event, const struct log_field *f, size_t n);

#endif
