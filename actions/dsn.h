/* Delivery status notifications (RFC 3464) for recipients refused by rules after other
 * recipients of the same message were accepted: built with GMime, sent from <> through the
 * configured bounce_relay, from the spool like any post-acceptance job. */
#ifndef SLUICE_DSN_H
#define SLUICE_DSN_H

#include <stddef.h>

#include "core/buf.h"

struct action;
struct spool_job;

/* The built-in action that sends a DSN job (action_type "dsn"). */
const struct action *dsn_action(void);
/* Builds the multipart/report for job (its content is the original message; its dsn_report the
 * per-recipient fields) into out, CRLF line endings: the headers, or the whole message for
 * RET=FULL; RFC 6533's message/global-* types when the message came with SMTPUTF8. */
void dsn_build(const struct spool_job *job, struct buf *out);

#endif
