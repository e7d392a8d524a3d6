/* The SES-shaped "Received" notification for a spooled message: notificationType, receipt
 * (verdicts, recipients, the action), mail (headers, commonHeaders, headersTruncated) and,
 * when asked, the content. Used by the webhook action. */
#ifndef SLUICE_NOTIFICATION_H
#define SLUICE_NOTIFICATION_H

#include <jansson.h>
#include <stddef.h>

struct spool_job;

enum notification_content { CONTENT_NONE, CONTENT_HEADERS, CONTENT_FULL };

/* Returns a new JSON object (caller json_decref's it). action is the receipt.action object,
 * taken over. headers_max caps the octets of mail.headers (headersTruncated then true). */
json_t *notification_build(const struct spool_job *j, json_t *action,
                           enum notification_content content, int base64, size_t headers_max);

#endif
