/* Finds the DMARC aggregate report attached to a mail (RFC 7489 §7.2.1.1): the first part of
 * type application/gzip, application/x-gzip, application/zip (and x-zip variants),
 * text/xml or application/xml, or application/octet-stream named *.xml, *.gz or *.zip;
 * looked for depth first through multiparts and attached message/rfc822 parts. Needs
 * g_mime_init() done. */
#ifndef SLUICE_DMARC_REPORT_MAIL_H
#define SLUICE_DMARC_REPORT_MAIL_H

#include <stddef.h>

#include "core/buf.h"

/* Appends the decoded (transfer encoding removed) bytes of the report part of the message
 * msg[0..len) to out. Returns 0, or -1 with the reason in err. */
int report_mail_attachment(const char *msg, size_t len, struct buf *out, char *err, size_t errlen);

#endif
