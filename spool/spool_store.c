/* Spool files: messages as raw bytes, jobs as small JSON documents (jansson), each written to
 * a temporary name, fsync'd, renamed, and its directory fsync'd. */
#include "spool/spool.h"
#include "core/durable.h"
#include "core/log.h"
#include "core/message.h"
#include "core/xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The job file format this sluice writes, and the oldest it still reads. A file without a
 * "version" field is version 1 (sluice before the field existed wrote exactly that format):
 * the envelope's fields flat beside the job's, action_type, on_failure and expire_after_ms at
 * the top, run by looking its action up in the config in force. Version 2 has the envelope in
 * one "envelope" object (envelope_to_json's) and the action in an "action" object: type,
 * on_failure, expire_after_ms and, for configured actions, the parameters and the config file
 * they came from. */
#define JOB_VERSION 2
#define JOB_VERSION_MIN 1

void spool_dirs(const char *data_dir, char *msg_dir, char *job_dir, size_t len)
{
    snprintf(msg_dir, len, "%s/spool/msg", data_dir);
    snprintf(job_dir, len, "%s/spool/jobs", data_dir);
}

int spool_write_message(const char *data_dir, const struct message *m, struct buf *content,
                        char *path, size_t pathlen, char *err, size_t errlen)
{
    char msg_dir[PATH_MAX], job_dir[PATH_MAX], name[64];
    spool_dirs(data_dir, msg_dir, job_dir, sizeof msg_dir);
    buf_reset(content);
    message_trace_headers(m, NULL, content);
    buf_append(content, m->body.data, m->body.len);
    snprintf(name, sizeof name, "%s.eml", m->env.qid);
    snprintf(path, pathlen, "%s/%s", msg_dir, name);
    return durable_write_file(msg_dir, name, content->data, content->len, 0700, 0600, err, errlen);
}

static const char *on_failure_name(enum on_failure f)
{
    return f == ON_FAILURE_CONTINUE ? "continue" : "retry";
}

/* The "action" object of version 2: what to run, and how long to keep trying. */
static json_t *action_json(const struct spool_job *j)
{
    json_t *a = json_pack("{s:s, s:s, s:I}", "type", j->action_type, "on_failure",
                          on_failure_name(j->on_failure), "expire_after_ms",
                          (json_int_t)j->expire_after_ms);
    if (a && j->action_params) {
        json_error_t jerr;
        json_t *params = json_loads(j->action_params, JSON_ALLOW_NUL, &jerr);
        if (!json_is_object(params)) {
            json_decref(params);
            json_decref(a);
            return NULL;
        }
        json_object_set_new(a, "params", params);
        json_object_set_new(a, "config_file",
                            json_string(j->action_config ? j->action_config : ""));
    }
    return a;
}

int spool_write_job(const char *data_dir, const struct spool_job *j, char *err, size_t errlen)
{
    json_t *o =
        json_pack("{s:i, s:s, s:s, s:s, s:i, s:o*, s:o, s:I, s:I, s:i, s:s}", "version",
                  JOB_VERSION, "id", j->id, "rule_set", j->rule_set, "rule", j->rule,
                  "action_index", j->action_index, "action", action_json(j), "envelope",
                  envelope_to_json(&j->env), "created", (json_int_t)j->created, "next_attempt",
                  (json_int_t)j->next_attempt, "attempts", j->attempts, "msg_path", j->msg_path);
    if (!o || !json_object_get(o, "action")) {
        json_decref(o);
        snprintf(err, errlen, "cannot encode job %s", j->id);
        return -EINVAL;
    }
    if (j->last_error) {
        json_object_set_new(o, "last_attempt", json_integer((json_int_t)j->last_attempt));
        json_object_set_new(o, "last_error", json_string(j->last_error));
    }
    if (j->dsn_report)
        json_object_set_new(o, "dsn",
                            json_pack("{s:s, s:s, s:s, s:s}", "report", j->dsn_report, "from",
                                      j->dsn_from, "relay", j->dsn_relay, "hostname", j->hostname));
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!text) {
        snprintf(err, errlen, "cannot encode job %s", j->id);
        return -EINVAL;
    }
    char msg_dir[PATH_MAX], job_dir[PATH_MAX], name[96];
    spool_dirs(data_dir, msg_dir, job_dir, sizeof msg_dir);
    snprintf(name, sizeof name, "%s.job", j->id);
    int rc = durable_write_file(job_dir, name, text, strlen(text), 0700, 0600, err, errlen);
    free(text);
    return rc;
}

void spool_remove_job(const char *data_dir, const struct spool_job *j, bool last)
{
    char msg_dir[PATH_MAX], job_dir[PATH_MAX], path[PATH_MAX + 100];
    spool_dirs(data_dir, msg_dir, job_dir, sizeof msg_dir);
    snprintf(path, sizeof path, "%s/%s.job", job_dir, j->id);
    unlink(path);
    if (last)
        unlink(j->msg_path);
    /* Not fsync'd: a job that reappears after a crash is re-run, and actions are idempotent. */
}

static const char *jstr(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

/* The "action" object of a version 2 job into j. Returns 0, or -1 with what is wrong in why:
 * such a job is left in place, never run with a guess of its action. */
static int action_from_json(json_t *o, struct spool_job *j, char *why, size_t len)
{
    json_t *a = json_object_get(o, "action");
    if (!json_is_object(a)) {
        snprintf(why, len, a ? "\"action\" is not an object" : "no \"action\" object");
        return -1;
    }
    const char *type = json_string_value(json_object_get(a, "type"));
    const char *policy = json_string_value(json_object_get(a, "on_failure"));
    json_t *expire = json_object_get(a, "expire_after_ms");
    json_t *params = json_object_get(a, "params");
    json_t *config = json_object_get(a, "config_file");
    if (!type || !type[0]) {
        snprintf(why, len, "action.type is not a non-empty string");
        return -1;
    }
    if (!policy || (strcmp(policy, "retry") != 0 && strcmp(policy, "continue") != 0)) {
        snprintf(why, len, "action.on_failure is not \"retry\" or \"continue\"");
        return -1;
    }
    if (!json_is_integer(expire) || json_integer_value(expire) <= 0) {
        snprintf(why, len, "action.expire_after_ms is not a positive integer");
        return -1;
    }
    /* A DSN carries its own fields in "dsn"; every configured action carries its parameters. */
    bool dsn = strcmp(type, "dsn") == 0;
    if (dsn ? params != NULL : !json_is_object(params)) {
        snprintf(why, len,
                 dsn ? "a dsn job has no action.params" : "action.params is not an object");
        return -1;
    }
    if (!dsn && !json_is_string(config)) {
        snprintf(why, len, "action.config_file is not a string");
        return -1;
    }
    if (dsn && !json_is_object(json_object_get(o, "dsn"))) {
        snprintf(why, len, "a dsn job has no \"dsn\" object");
        return -1;
    }
    free(j->action_type);
    j->action_type = xstrdup(type);
    j->on_failure = strcmp(policy, "continue") == 0 ? ON_FAILURE_CONTINUE : ON_FAILURE_RETRY;
    j->expire_after_ms = json_integer_value(expire);
    if (!dsn) {
        /* Canonical text (sorted keys): equal parameters give equal strings. */
        j->action_params = json_dumps(params, JSON_COMPACT | JSON_SORT_KEYS);
        j->action_config = xstrdup(json_string_value(config));
        if (!j->action_params) {
            snprintf(why, len, "action.params cannot be encoded again");
            return -1;
        }
    }
    return 0;
}

/* Version 1: the envelope's fields flat in the job object, read leniently as that sluice did
 * (a missing field is empty); it knew only qid, the matched recipients, MAIL FROM, HELO ("" for
 * none), client address, TLS, verdicts and arrival. */
static void envelope_from_v1(struct envelope *e, json_t *o)
{
    envelope_init(e);
    snprintf(e->qid, sizeof e->qid, "%s", jstr(o, "qid"));
    json_t *rcpts = json_object_get(o, "rcpts");
    for (size_t i = 0; i < json_array_size(rcpts); i++)
        envelope_add_rcpt(e, json_string_value(json_array_get(rcpts, i)) ?: "");
    e->mail_from = xstrdup(jstr(o, "mail_from"));
    e->helo = jstr(o, "helo")[0] ? xstrdup(jstr(o, "helo")) : NULL;
    snprintf(e->client_ip, sizeof e->client_ip, "%s", jstr(o, "client_ip"));
    e->tls = json_is_true(json_object_get(o, "tls"));
    json_t *v = json_object_get(o, "verdicts");
    enum verdict *fields[] = {&e->verdicts.spf, &e->verdicts.dkim, &e->verdicts.dmarc,
                              &e->verdicts.spam, &e->verdicts.virus};
    const char *names[] = {"spf", "dkim", "dmarc", "spam", "virus"};
    for (int i = 0; i < 5; i++)
        if (verdict_parse(jstr(v, names[i]), fields[i]) < 0)
            *fields[i] = VERDICT_UNSET;
    if (dmarc_policy_parse(jstr(v, "dmarc_policy"), &e->verdicts.dmarc_policy) < 0)
        e->verdicts.dmarc_policy = DMARC_POLICY_UNSET;
    e->arrival = (time_t)json_integer_value(json_object_get(o, "arrival"));
}

enum job_read { JOB_OK, JOB_UNREADABLE, JOB_LEAVE };

/* A job of the given (readable) version from o into *out (caller frees). */
static enum job_read job_from_json(json_t *o, json_int_t version, struct spool_job **out, char *why,
                                   size_t len)
{
    *out = NULL;
    struct spool_job *j = xcalloc(1, sizeof *j);
    if (version == 1) {
        envelope_from_v1(&j->env, o);
    } else if (envelope_from_json(&j->env, json_object_get(o, "envelope"), why, len) < 0) {
        spool_job_free(j);
        return JOB_UNREADABLE;
    }
    snprintf(j->id, sizeof j->id, "%s", jstr(o, "id"));
    j->rule_set = xstrdup(jstr(o, "rule_set"));
    j->rule = xstrdup(jstr(o, "rule"));
    j->action_index = (int)json_integer_value(json_object_get(o, "action_index"));
    j->action_type = xstrdup(jstr(o, "action_type"));
    j->created = (time_t)json_integer_value(json_object_get(o, "created"));
    j->next_attempt = (time_t)json_integer_value(json_object_get(o, "next_attempt"));
    j->attempts = (int)json_integer_value(json_object_get(o, "attempts"));
    j->expire_after_ms = json_integer_value(json_object_get(o, "expire_after_ms"));
    j->on_failure =
        strcmp(jstr(o, "on_failure"), "continue") == 0 ? ON_FAILURE_CONTINUE : ON_FAILURE_RETRY;
    j->msg_path = xstrdup(jstr(o, "msg_path"));
    if (json_is_string(json_object_get(o, "last_error"))) {
        j->last_error = xstrdup(jstr(o, "last_error"));
        j->last_attempt = (time_t)json_integer_value(json_object_get(o, "last_attempt"));
    }
    json_t *dsn = json_object_get(o, "dsn");
    if (dsn) {
        j->dsn_report = xstrdup(jstr(dsn, "report"));
        j->dsn_from = xstrdup(jstr(dsn, "from"));
        j->dsn_relay = xstrdup(jstr(dsn, "relay"));
        j->hostname = xstrdup(jstr(dsn, "hostname"));
    }
    if (version >= 2 && action_from_json(o, j, why, len) < 0) {
        spool_job_free(j);
        return JOB_LEAVE;
    }
    if (!j->id[0] || !j->env.qid[0] || !j->msg_path[0] || !j->action_type[0]) {
        snprintf(why, len, "id, qid, action_type or msg_path is missing");
        spool_job_free(j);
        return JOB_UNREADABLE;
    }
    *out = j;
    return JOB_OK;
}

/* The job file's format version, or 0 (with why) when this sluice cannot read it. A job written
 * by a newer sluice (an unknown version) is left exactly where it is, neither misread nor moved
 * aside as .bad: that sluice, reinstalled, must still find and run it. */
static json_int_t job_version(json_t *o, char *why, size_t len)
{
    json_t *v = json_object_get(o, "version");
    if (!v)
        return 1;
    json_int_t version = json_is_integer(v) ? json_integer_value(v) : -1;
    if (version >= JOB_VERSION_MIN && version <= JOB_VERSION)
        return version;
    if (json_is_integer(v))
        snprintf(why, len, "has version %lld; this sluice reads versions %d-%d", (long long)version,
                 JOB_VERSION_MIN, JOB_VERSION);
    else
        snprintf(why, len, "has a version that is not an integer; this sluice reads versions %d-%d",
                 JOB_VERSION_MIN, JOB_VERSION);
    return 0;
}

/* Job files hold action parameters (webhook secrets among them): the spool's directories are
 * the owner's only, also when an operator or an older install made them otherwise. */
static void make_private(const char *dir)
{
    struct stat st;
    if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode) || (st.st_mode & 077) == 0)
        return;
    if (chmod(dir, st.st_mode & 0700) < 0)
        log_msg(LOG_ERR, "spool: %s is mode %04o and cannot be made private: %s", dir,
                (unsigned)(st.st_mode & 07777), strerror(errno));
    else
        log_msg(LOG_WARN,
                "spool: %s was mode %04o, made it %04o (job files hold action "
                "parameters such as secrets)",
                dir, (unsigned)(st.st_mode & 07777), (unsigned)(st.st_mode & 0700));
}

/* A job file left in place unread (name "<qid>-<n>.job"): its id, queue id and the message
 * file it keeps (the one every job of that message names). */
static struct spool_job *held_job(const char *path, const char *name)
{
    struct spool_job *j = xcalloc(1, sizeof *j);
    snprintf(j->id, sizeof j->id, "%.*s", (int)(strlen(name) - 4), name);
    const char *dash = strrchr(j->id, '-');
    int qlen = dash ? (int)(dash - j->id) : (int)strlen(j->id);
    snprintf(j->env.qid, sizeof j->env.qid, "%.*s", qlen, j->id);
    /* path is <data_dir>/spool/jobs/<name>: the message is <data_dir>/spool/msg/<qid>.eml. */
    size_t dlen = strlen(path) - strlen(name) - strlen("jobs/");
    char msg[PATH_MAX + 300];
    snprintf(msg, sizeof msg, "%.*smsg/%s.eml", (int)dlen, path, j->env.qid);
    j->msg_path = xstrdup(msg);
    j->held = true;
    return j;
}

enum spool_file spool_read_job(const char *path, const char *name, struct spool_job **out,
                               char *why, size_t len)
{
    *out = NULL;
    json_error_t jerr;
    json_t *o = json_load_file(path, JSON_ALLOW_NUL, &jerr);
    if (!o) {
        snprintf(why, len, "%s", jerr.text);
        return SPOOL_FILE_BAD;
    }
    json_int_t version = job_version(o, why, len);
    if (version == 0) {
        json_decref(o);
        *out = held_job(path, name);
        return SPOOL_FILE_HELD_VERSION;
    }
    enum job_read rd = job_from_json(o, version, out, why, len);
    json_decref(o);
    if (rd == JOB_LEAVE) {
        *out = held_job(path, name);
        return SPOOL_FILE_HELD_ACTION;
    }
    return rd == JOB_OK ? SPOOL_FILE_OK : SPOOL_FILE_BAD;
}

size_t spool_load_jobs(const char *data_dir, struct spool_job ***out)
{
    char msg_dir[PATH_MAX], job_dir[PATH_MAX], spool_dir[PATH_MAX];
    spool_dirs(data_dir, msg_dir, job_dir, sizeof msg_dir);
    snprintf(spool_dir, sizeof spool_dir, "%s/spool", data_dir);
    make_private(spool_dir);
    make_private(msg_dir);
    make_private(job_dir);
    *out = NULL;
    DIR *d = opendir(job_dir);
    if (!d)
        return 0;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (e->d_name[0] == '.' || len < 5 || strcmp(e->d_name + len - 4, ".job") != 0)
            continue;
        char path[PATH_MAX + 300], why[256];
        snprintf(path, sizeof path, "%s/%s", job_dir, e->d_name);
        struct spool_job *j;
        enum spool_file st = spool_read_job(path, e->d_name, &j, why, sizeof why);
        if (st == SPOOL_FILE_HELD_VERSION)
            log_msg(LOG_ERR, "spool job %s %s: left in place", path, why);
        else if (st == SPOOL_FILE_HELD_ACTION)
            log_msg(LOG_ERR, "spool job %s has a bad \"action\" object (%s): left in place", path,
                    why);
        if (!j) {
            char bad[PATH_MAX + 310];
            snprintf(bad, sizeof bad, "%s.bad", path);
            rename(path, bad);
            log_msg(LOG_ERR, "spool: unreadable job %s (%s) moved to %s", path, why, bad);
            continue;
        }
        *out = xgrow(*out, sizeof **out, &cap, n);
        (*out)[n++] = j;
    }
    closedir(d);
    return n;
}

int spool_job_load_content(struct spool_job *j, char *err, size_t errlen)
{
    if (j->content.len)
        return 0;
    FILE *f = fopen(j->msg_path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot read spooled message %s: %s", j->msg_path, strerror(errno));
        return -1;
    }
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        buf_append(&j->content, chunk, n);
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        snprintf(err, errlen, "cannot read spooled message %s", j->msg_path);
        return -1;
    }
    return 0;
}

struct spool_job *spool_job_new(const struct message *m, const char *rule_set, const char *rule,
                                int action_index, const char *type, const size_t *rcpts, size_t n,
                                int seq)
{
    struct spool_job *j = xcalloc(1, sizeof *j);
    snprintf(j->id, sizeof j->id, "%s-%d", m->env.qid, seq);
    j->rule_set = xstrdup(rule_set);
    j->rule = xstrdup(rule);
    j->action_index = action_index;
    j->action_type = xstrdup(type);
    /* The message's envelope with the rule's recipients instead of all of them. */
    struct envelope all = m->env;
    all.rcpts = NULL;
    all.nrcpts = all.rcpts_cap = 0;
    envelope_copy(&j->env, &all);
    for (size_t i = 0; i < n; i++)
        envelope_copy_rcpt(&j->env, &m->env, rcpts[i]);
    if (!j->env.mail_from)
        j->env.mail_from = xstrdup("");
    j->created = time(NULL);
    j->next_attempt = j->created;
    j->msg_path = xstrdup("");
    return j;
}

void spool_job_free(struct spool_job *j)
{
    if (!j)
        return;
    free(j->rule_set);
    free(j->rule);
    free(j->action_type);
    envelope_free(&j->env);
    free(j->action_params);
    free(j->action_config);
    free(j->msg_path);
    free(j->last_error);
    free(j->dsn_report);
    free(j->dsn_from);
    free(j->dsn_relay);
    free(j->hostname);
    buf_free(&j->content);
    free(j);
}
