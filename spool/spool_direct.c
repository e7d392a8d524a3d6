/* Drop and retry on the job files themselves, under the spool lock. */
#include "spool/spool_direct.h"
#include "core/durable.h"
#include "core/fsync_dir.h"
#include "spool/spool.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Whether a job file other than skip's belongs to message qid ("<qid>-<n>.job"). */
static bool other_jobs(const char *job_dir, const char *qid, const char *skip)
{
    DIR *d = opendir(job_dir);
    if (!d)
        return false;
    size_t qlen = strlen(qid);
    bool found = false;
    struct dirent *e;
    while (!found && (e = readdir(d))) {
        size_t len = strlen(e->d_name);
        found = len > qlen + 5 && strncmp(e->d_name, qid, qlen) == 0 && e->d_name[qlen] == '-' &&
                strcmp(e->d_name + len - 4, ".job") == 0 && strcmp(e->d_name, skip) != 0;
    }
    closedir(d);
    return found;
}

int spool_drop_direct(const char *data_dir, const char *id, char *text, size_t len)
{
    char msg_dir[PATH_MAX], job_dir[PATH_MAX], name[96], path[PATH_MAX + 100], why[256];
    spool_dirs(data_dir, msg_dir, job_dir, sizeof msg_dir);
    snprintf(name, sizeof name, "%s.job", id);
    snprintf(path, sizeof path, "%s/%s", job_dir, name);
    if (access(path, F_OK) < 0) {
        snprintf(text, len, "no job %s in %s", id, job_dir);
        return -1;
    }
    struct spool_job *j;
    enum spool_file st = spool_read_job(path, name, &j, why, sizeof why);
    /* The message file every job of the message shares: <msg_dir>/<qid>.eml. */
    char qid[64];
    const char *dash = strrchr(id, '-');
    snprintf(qid, sizeof qid, "%.*s", dash ? (int)(dash - id) : (int)strlen(id), id);
    char msg[PATH_MAX + 80];
    snprintf(msg, sizeof msg, "%s/%s.eml", msg_dir, qid);
    if (unlink(path) < 0) {
        snprintf(text, len, "cannot remove %s: %s", path, strerror(errno));
        spool_job_free(j);
        return -1;
    }
    fsync_dir(job_dir);
    bool last = !other_jobs(job_dir, qid, name);
    if (last && unlink(msg) == 0)
        fsync_dir(msg_dir);
    char what[320];
    if (st == SPOOL_FILE_OK)
        snprintf(what, sizeof what, "%s for rule %s/%s, %zu recipients, %d attempts",
                 j->action_type, j->rule_set, j->rule, j->env.nrcpts, j->attempts);
    else
        snprintf(what, sizeof what, "held: %s", why);
    snprintf(text, len, "dropped job %s (%s); %s", id, what,
             last ? "its message file was the last job's and is removed"
                  : "its message file stays for the message's other jobs");
    spool_job_free(j);
    return 0;
}

/* Sets "next_attempt" of the job file path to now, keeping every other field as it is, and
 * the file's owner (the CLI may run as root, serve as its own user). */
static int due_now(const char *job_dir, const char *name, const char *path, char *err,
                   size_t errlen)
{
    json_error_t jerr;
    json_t *o = json_load_file(path, JSON_ALLOW_NUL, &jerr);
    if (!o) {
        snprintf(err, errlen, "%.300s: %s", path, jerr.text);
        return -1;
    }
    struct stat st;
    bool owned = stat(path, &st) == 0;
    json_object_set_new(o, "next_attempt", json_integer((json_int_t)time(NULL)));
    char *body = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    int rc = body ? durable_write_file(job_dir, name, body, strlen(body), 0700, 0600, err, errlen)
                  : -EINVAL;
    free(body);
    if (rc == 0 && owned && geteuid() == 0 && st.st_uid != 0 && chown(path, st.st_uid, st.st_gid))
        snprintf(err, errlen, "cannot give %.300s back to uid %u", path, (unsigned)st.st_uid);
    return rc < 0 ? -1 : 0;
}

int spool_retry_direct(const char *data_dir, const char *id, char *text, size_t len)
{
    char msg_dir[PATH_MAX], job_dir[PATH_MAX];
    spool_dirs(data_dir, msg_dir, job_dir, sizeof msg_dir);
    bool all = strcmp(id, "*") == 0;
    DIR *d = opendir(job_dir);
    size_t due = 0, held = 0, found = 0;
    char err[512] = "";
    struct dirent *e;
    while (d && (e = readdir(d))) {
        size_t nlen = strlen(e->d_name);
        if (e->d_name[0] == '.' || nlen < 5 || strcmp(e->d_name + nlen - 4, ".job") != 0)
            continue;
        if (!all && (nlen - 4 != strlen(id) || strncmp(e->d_name, id, nlen - 4) != 0))
            continue;
        found++;
        char path[PATH_MAX + 300], why[256];
        snprintf(path, sizeof path, "%s/%s", job_dir, e->d_name);
        struct spool_job *j;
        enum spool_file st = spool_read_job(path, e->d_name, &j, why, sizeof why);
        spool_job_free(j);
        if (st != SPOOL_FILE_OK) {
            held++;
            if (!all)
                snprintf(err, sizeof err, "job %s is held (%s): it cannot be retried, only dropped",
                         id, why);
            continue;
        }
        if (due_now(job_dir, e->d_name, path, err, sizeof err) == 0)
            due++;
    }
    if (d)
        closedir(d);
    if (!all && !found) {
        snprintf(text, len, "no job %s in %s", id, job_dir);
        return -1;
    }
    if (!all && !due) {
        snprintf(text, len, "%s", err);
        return -1;
    }
    if (all)
        snprintf(text, len,
                 "%zu jobs due now, %zu held ones left as they are; no sluice serve runs: they "
                 "run when it starts",
                 due, held);
    else
        snprintf(text, len, "job %s due now; no sluice serve runs: it runs when it starts", id);
    return err[0] && due < found - held ? -1 : 0;
}
