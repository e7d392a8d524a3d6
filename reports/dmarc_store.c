#include "reports/dmarc_store.h"
#include "auth/auth.h"
#include "config/config.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/message.h"
#include "core/verdict.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char SCHEMA[] =
    "PRAGMA journal_mode=WAL;"
    "CREATE TABLE IF NOT EXISTS evaluation("
    " at INTEGER NOT NULL,"
    " policy_domain TEXT NOT NULL," /* where the DMARC record was found */
    " record TEXT NOT NULL,"        /* the record as published then */
    " source_ip TEXT NOT NULL,"
    " header_from TEXT NOT NULL,"
    " envelope_from TEXT NOT NULL,"
    " envelope_to TEXT NOT NULL,"
    " disposition TEXT NOT NULL," /* none | quarantine | reject */
    " dkim TEXT NOT NULL,"        /* policy_evaluated: aligned DKIM pass | fail */
    " spf TEXT NOT NULL,"         /* policy_evaluated: aligned SPF pass | fail */
    " spf_domain TEXT NOT NULL,"
    " spf_scope TEXT NOT NULL," /* mfrom | helo */
    " spf_result TEXT NOT NULL,"
    " dkim_results TEXT NOT NULL" /* 'domain selector result' lines */
    ");"
    "CREATE INDEX IF NOT EXISTS evaluation_domain_at ON evaluation(policy_domain, at);";

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static sqlite3 *db;
static sqlite3_stmt *insert;
static int failed; /* opening failed once: logged, not retried for every message */

sqlite3 *dmarc_store_open(const char *data_dir, char *err, size_t errlen)
{
    char dir[PATH_MAX - 32], path[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/dmarc", data_dir ? data_dir : ".");
    snprintf(path, sizeof path, "%s/evaluations.db", dir);
    if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %.200s: %s", dir, strerror(errno));
        return NULL;
    }
    sqlite3 *h = NULL;
    if (sqlite3_open_v2(path, &h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%.200s: %s", path, h ? sqlite3_errmsg(h) : "cannot open");
        sqlite3_close(h);
        return NULL;
    }
    sqlite3_busy_timeout(h, 5000);
    char *msg = NULL;
    if (sqlite3_exec(h, SCHEMA, NULL, NULL, &msg) != SQLITE_OK ||
        sqlite3_exec(h, "PRAGMA synchronous=NORMAL;", NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "%.200s: %s", path, msg ? msg : "schema");
        sqlite3_free(msg);
        sqlite3_close(h);
        return NULL;
    }
    return h;
}

static const char *domain_of(const char *addr)
{
    const char *at = addr ? strrchr(addr, '@') : NULL;
    return at ? at + 1 : "";
}

void dmarc_store_record(const struct config *cfg, const struct message *m, const char *reply,
                        size_t refused, time_t now)
{
    const struct auth_details *a = m->auth;
    if (!cfg->dmarc_reports.line || !a || !a->dmarc_record || !a->dmarc_record_domain ||
        !a->from_domain || (reply && reply[0] == '4'))
        return;
    struct buf dkim = {0};
    for (size_t i = 0; i < a->nsigs; i++)
        buf_printf(&dkim, "%s%s %s %s", i ? "\n" : "",
                   a->sigs[i].domain && *a->sigs[i].domain ? a->sigs[i].domain : "-",
                   a->sigs[i].selector && *a->sigs[i].selector ? a->sigs[i].selector : "-",
                   dkim_res_name(a->sigs[i].result));
    const char *disposition = "none";
    if ((reply && reply[0] == '5') || (m->env.nrcpts && refused >= m->env.nrcpts))
        disposition = "reject";
    else if (m->env.verdicts.dmarc_policy == DMARC_POLICY_QUARANTINE)
        disposition = "quarantine";
    const char *text[] = {a->dmarc_record_domain,
                          a->dmarc_record,
                          m->env.client_ip,
                          a->from_domain,
                          domain_of(m->env.mail_from),
                          m->env.nrcpts ? domain_of(m->env.rcpts[0]) : "",
                          disposition,
                          a->dmarc_dkim_aligned ? "pass" : "fail",
                          a->dmarc_spf_aligned ? "pass" : "fail",
                          a->spf_domain ? a->spf_domain : "",
                          a->spf_helo ? "helo" : "mfrom",
                          spf_res_name(a->spf),
                          buf_cstr(&dkim)};
    pthread_mutex_lock(&lock);
    if (!db && !failed) {
        char err[512];
        db = dmarc_store_open(cfg->server.data_dir, err, sizeof err);
        if (db && sqlite3_prepare_v2(db,
                                     "INSERT INTO evaluation VALUES"
                                     "(?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                                     -1, &insert, NULL) != SQLITE_OK) {
            snprintf(err, sizeof err, "%s", sqlite3_errmsg(db));
            sqlite3_close(db);
            db = NULL;
        }
        if (!db) {
            failed = 1;
            log_msg(LOG_ERR, "dmarc reports: evaluations are not recorded: %s", err);
        }
    }
    if (db) {
        sqlite3_bind_int64(insert, 1, (sqlite3_int64)now);
        for (int i = 0; i < 13; i++)
            sqlite3_bind_text(insert, i + 2, text[i], -1, SQLITE_TRANSIENT);
        if (sqlite3_step(insert) != SQLITE_DONE)
            log_msg(LOG_WARN, "qid=%s dmarc reports: cannot record the evaluation: %s", m->env.qid,
                    sqlite3_errmsg(db));
        sqlite3_reset(insert);
    }
    pthread_mutex_unlock(&lock);
    buf_free(&dkim);
}

void dmarc_store_shutdown(void)
{
    pthread_mutex_lock(&lock);
    sqlite3_finalize(insert);
    insert = NULL;
    sqlite3_close(db);
    db = NULL;
    failed = 0;
    pthread_mutex_unlock(&lock);
}
