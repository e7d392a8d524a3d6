/* One reporting run: every DMARC aggregate report of [begin, end), written to a folder
 * (dry run) or mailed. Shared by `sluice dmarc-report` and the daemon's timer
 * (reports/dmarc_timer.c). Blocking (SQLite, DNS, SMTP): never on the event loop. */
#ifndef SLUICE_REPORTS_DMARC_RUN_H
#define SLUICE_REPORTS_DMARC_RUN_H

#include <stdbool.h>
#include <time.h>

struct config;

/* Receives each line of the outcome: is_error for failures and skipped addresses. */
typedef void (*dmarc_say_fn)(bool is_error, const char *line, void *ud);

/* Builds the reports of [begin, end). dir: write <dir>/<receiver>!<domain>!<begin>!<end>.xml;
 * NULL: send them (and remember each sent one in the store). skip_sent: leave out domains
 * whose report for the period was already sent (the daemon; a restart must not send twice).
 * Returns 0 when every report was written or sent, -1 otherwise (each failure said). */
int dmarc_reports_run(const struct config *cfg, time_t begin, time_t end, const char *dir,
                      bool skip_sent, dmarc_say_fn say, void *ud);

#endif
