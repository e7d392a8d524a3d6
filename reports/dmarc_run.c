#include "reports/dmarc_run.h"
#include "config/config.h"
#include "core/buf.h"
#include "reports/dmarc_aggregate.h"
#include "reports/dmarc_send.h"
#include "reports/dmarc_store.h"

#include <errno.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define DMARC_KEEP_S (7 * 86400)

__attribute__((format(printf, 4, 5))) static void sayf(dmarc_say_fn say, void *ud, bool is_error,
                                                       const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    say(is_error, line, ud);
}

static int write_file(const char *path, const struct buf *b)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    size_t n = fwrite(b->data, 1, b->len, f);
    int rc = fclose(f);
    return n == b->len && rc == 0 ? 0 : -1;
}

static const char SENT_SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS sent(policy_domain TEXT NOT NULL, begin INTEGER NOT NULL,"
    " end INTEGER NOT NULL, at INTEGER NOT NULL, PRIMARY KEY(policy_domain, begin, end));";

static int was_sent(sqlite3 *db, const char *domain, time_t begin, time_t end)
{
    sqlite3_stmt *st;
    int found = 0;
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM sent WHERE policy_domain=? AND begin=? AND end=?", -1,
                           &st, NULL) != SQLITE_OK)
        return 0;
    sqlite3_bind_text(st, 1, domain, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, begin);
    sqlite3_bind_int64(st, 3, end);
    found = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    return found;
}

static void mark_sent(sqlite3 *db, const char *domain, time_t begin, time_t end)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO sent VALUES(?,?,?,?)", -1, &st, NULL) !=
        SQLITE_OK)
        return;
    sqlite3_bind_text(st, 1, domain, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, begin);
    sqlite3_bind_int64(st, 3, end);
    sqlite3_bind_int64(st, 4, time(NULL));
    sqlite3_step(st);
    sqlite3_finalize(st);
}

int dmarc_reports_run(const struct config *cfg, time_t begin, time_t end, const char *dir,
                      bool skip_sent, dmarc_say_fn say, void *ud)
{
    const struct dmarc_reports_cfg *dr = &cfg->dmarc_reports;
    char err[1024];
    char **domains = NULL;
    long n = 0;
    int rc = -1;
    if (dir && mkdir(dir, 0750) < 0 && errno != EEXIST) {
        sayf(say, ud, true, "cannot create %s: %s", dir, strerror(errno));
        return -1;
    }
    sqlite3 *db = dmarc_store_open(cfg->server.data_dir, err, sizeof err);
    if (!db) {
        say(true, err, ud);
        return -1;
    }
    if (sqlite3_exec(db, SENT_SCHEMA, NULL, NULL, NULL) != SQLITE_OK) {
        sayf(say, ud, true, "dmarc store: %s", sqlite3_errmsg(db));
        goto done;
    }
    n = dmarc_aggregate_domains(db, begin, end, &domains, err, sizeof err);
    if (n < 0) {
        say(true, err, ud);
        n = 0;
        goto done;
    }
    const char *at = strrchr(dr->email, '@');
    const char *receiver = at ? at + 1 : dr->email;
    rc = 0;
    long already = 0;
    for (long i = 0; i < n; i++) {
        if (!dir && skip_sent && was_sent(db, domains[i], begin, end)) {
            already++;
            continue;
        }
        struct buf xml = {0};
        char *rua = NULL;
        long rows = dmarc_aggregate_build(db, dr, dmarc_node(cfg), domains[i], begin, end, &xml,
                                          &rua, err, sizeof err);
        char file[PATH_MAX];
        snprintf(file, sizeof file, "%s/%s!%s!%lld!%lld.xml", dir ? dir : ".", receiver, domains[i],
                 (long long)begin, (long long)end - 1);
        if (rows < 0) {
            sayf(say, ud, true, "%s: %s", domains[i], err);
            rc = -1;
        } else if (!dir) {
            struct buf skipped = {0};
            int sent = dmarc_report_send(cfg, receiver, domains[i], begin, end, &xml,
                                         rua ? rua : "", &skipped, err, sizeof err);
            if (skipped.len && skipped.data[skipped.len - 1] == '\n')
                skipped.len--; /* the last line's end: say() ends lines itself */
            if (skipped.len)
                sayf(say, ud, true, "%s: not sent to %s", domains[i], buf_cstr(&skipped));
            if (sent < 0) {
                sayf(say, ud, true, "%s: %s", domains[i], err);
                rc = -1;
            } else {
                /* Also with no authorized address: there is nobody to retry for. */
                mark_sent(db, domains[i], begin, end);
                sayf(say, ud, false, "%s: %ld rows, sent to %d of rua=%s", domains[i], rows, sent,
                     rua ? rua : "");
            }
            buf_free(&skipped);
        } else if (strchr(domains[i], '/') || write_file(file, &xml) < 0) {
            sayf(say, ud, true, "cannot write %s: %s", file, strerror(errno));
            rc = -1;
        } else {
            sayf(say, ud, false, "%s: %ld rows, rua=%s", file, rows, rua ? rua : "");
        }
        free(rua);
        buf_free(&xml);
    }
    /* Evaluations are kept a week past the period they were reported for: enough for a
     * rerun by hand, and the store does not grow without bound. */
    if (!dir && rc == 0) {
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(db, "DELETE FROM evaluation WHERE at < ?", -1, &st, NULL) ==
            SQLITE_OK) {
            sqlite3_bind_int64(st, 1, (sqlite3_int64)begin - DMARC_KEEP_S);
            sqlite3_step(st);
            sqlite3_finalize(st);
        }
    }
    if (n == 0 && !skip_sent) /* the daemon checks every few minutes: no noise */
        sayf(say, ud, false, "no domain with a rua= had evaluations in [%lld, %lld)",
             (long long)begin, (long long)end);
    else if (already)
        sayf(say, ud, false, "%ld of %ld reports for [%lld, %lld) were sent before", already, n,
             (long long)begin, (long long)end);
done:
    for (long i = 0; i < n; i++)
        free(domains[i]);
    free(domains);
    sqlite3_close(db);
    return rc;
}
