/* Small GMime builders shared by the messages sluice writes itself (DSNs, DMARC aggregate
 * reports). Need g_mime_init() done. */
#ifndef SLUICE_MIME_PART_H
#define SLUICE_MIME_PART_H

#include <gmime/gmime.h>
#include <stddef.h>

#include "core/buf.h"

/* A new leaf part type/subtype holding data[0..len) (copied); the caller unrefs it. */
GMimePart *mime_part_new(const char *type, const char *subtype, const void *data, size_t len);
/* Appends msg with CRLF line endings to out. */
void mime_message_write(GMimeMessage *msg, struct buf *out);

#endif
