/* Unpacks a DMARC aggregate report attachment: gzip, zip (first .xml entry) or plain XML,
 * recognised by their magic bytes. Decompression is capped (zip and gzip bombs): a report that
 * would grow beyond max bytes is refused, not truncated. */
#ifndef SLUICE_DMARC_UNPACK_H
#define SLUICE_DMARC_UNPACK_H

#include <stddef.h>

#include "core/buf.h"

#define UNPACK_MAX_ZIP_ENTRIES 16

/* Appends the XML in data[0..len) to out, at most max bytes. Returns 0, or -1 with the reason
 * in err (out then holds partial bytes the caller discards). kind, when not NULL, gets
 * "gzip", "zip" or "xml". */
int report_unpack(const unsigned char *data, size_t len, size_t max, struct buf *out,
                  const char **kind, char *err, size_t errlen);

/* Appends data[0..len) gzip'd to out (for the reports we send). */
void report_gzip(const void *data, size_t len, struct buf *out);

#endif
