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

void log_set_json(int json);
void log_set_level(enum log_level max);
/* A free-form line. */
void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A structured line: event name plus fields, in order. */
void log_event(enum log_level lvl, const char *event, const struct log_kv *kv, size_t n);

#endif
