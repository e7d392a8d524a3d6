/* POSTing JSON to a receiver (webhook notifications, ingested DMARC reports) with libcurl. */
#ifndef SLUICE_HTTP_POST_H
#define SLUICE_HTTP_POST_H

#include <stddef.h>

/* POSTs body to url with X-Sluice-Delivery-Id: delivery_id and, when secret is not NULL,
 * X-Sluice-Signature: sha256=<HMAC-SHA256 of the body>. Reuses one connection per worker
 * thread. Returns 0 on a 2xx answer, or -1 with the reason in err. */
int http_post_json(const char *url, const char *body, const char *delivery_id, const char *secret,
                   long timeout_ms, char *err, size_t errlen);

#endif
