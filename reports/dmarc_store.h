/* The durable record of our DMARC evaluations, for the aggregate reports we send (RFC 7489
 * §7.2): one SQLite database, <data_dir>/dmarc/evaluations.db, one row per evaluated message
 * whose author domain publishes a DMARC record. Written from worker threads through one
 * process-wide connection under a mutex (WAL journal, synchronous=NORMAL: an insert costs no
 * fsync; a crash may lose the last moments, which a statistical report tolerates). */
#ifndef SLUICE_REPORTS_DMARC_STORE_H
#define SLUICE_REPORTS_DMARC_STORE_H

#include <stddef.h>
#include <time.h>

struct config;
struct message;
struct sqlite3;

/* Records the DMARC evaluation in m->auth at time now, once the rules have answered reply
 * (refused: how many recipients they refused). A no-op without a DMARC record, without the
 * dmarc_reports { } block, and for a 4xx reply (the sender retries; that attempt counts). The
 * disposition is what was done, not what was asked: "reject" when the message was refused,
 * "quarantine" when the domain asked for it and the message was accepted (the rules' junk
 * handling, e.g. bounce_on_dmarc_fail's quarantine), "none" otherwise. Opens the database on
 * first use. Errors are logged, never fatal: mail flow does not depend on reporting. */
void dmarc_store_record(const struct config *cfg, const struct message *m, const char *reply,
                        size_t refused, time_t now);

/* Opens <data_dir>/dmarc/evaluations.db (creating the schema) for reading or writing. Returns
 * NULL with err set. The caller closes it with sqlite3_close. */
struct sqlite3 *dmarc_store_open(const char *data_dir, char *err, size_t errlen);

/* Closes the process-wide connection (at shutdown). */
void dmarc_store_shutdown(void);

#endif
