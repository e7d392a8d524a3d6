/* Prometheus exporter: GET /metrics on server { metrics = "ip:port" }, served by libevent's
 * evhttp on the main event loop (counters are atomics; reading them never blocks workers). */
#ifndef SLUICE_METRICS_HTTP_H
#define SLUICE_METRICS_HTTP_H

#include <stddef.h>

#include "core/buf.h"

struct server;
struct evhttp;

/* Returns the HTTP server (free with metrics_http_free), or NULL with the reason in err. */
struct evhttp *metrics_http_start(struct server *srv, const char *address, char *err,
                                  size_t errlen);
void metrics_http_free(struct evhttp *http);
/* The exposition text (caller frees the buf); exposed for tests and `sluice test`. */
void metrics_render(struct server *srv, struct buf *out);

#endif
