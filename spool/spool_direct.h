/* `sluice spool drop|retry` when no server runs: the CLI changes the job files itself. The
 * caller holds the spool lock (spool/spool_control.h), so no serve can start meanwhile. */
#ifndef SLUICE_SPOOL_DIRECT_H
#define SLUICE_SPOOL_DIRECT_H

#include <stddef.h>

/* Removes job id's file, and its message file when no other job of that message remains.
 * Returns 0 with what was dropped in text, or -1 with why not (no such job, an error). */
int spool_drop_direct(const char *data_dir, const char *id, char *text, size_t len);
/* Makes job id (or every job, for "*") due now: its next_attempt becomes the current time.
 * A held job is refused. Returns 0 or -1, with the outcome in text. */
int spool_retry_direct(const char *data_dir, const char *id, char *text, size_t len);

#endif
