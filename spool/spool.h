/* The durable spool for work done after a message was accepted (webhooks, relays, S3, ...):
 * the message file <data_dir>/spool/msg/<qid>.eml and one job file per action
 * <data_dir>/spool/jobs/<qid>-<n>.job (JSON). Both are fsync'd before the 250 reply, so a
 * job survives crashes and restarts; a job file is removed only after its action succeeded,
 * failed for good, or expired. Delivery is at least once: actions send an idempotency key. */
#ifndef SLUICE_SPOOL_H
#define SLUICE_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "core/buf.h"
#include "core/envelope.h"

struct message;

enum on_failure {
    ON_FAILURE_DEFAULT = 0, /* tempfail in the session; retry for post-acceptance actions */
    ON_FAILURE_TEMPFAIL,    /* reply 451 4.3.0: nothing is acknowledged, the sender retries */
    ON_FAILURE_RETRY,       /* accept; retry from the spool with backoff until expire_after */
    ON_FAILURE_CONTINUE,    /* count the failure and go on */
    ON_FAILURE_DROP,        /* the rule's recipients get nothing more */
};

/* One post-acceptance action for one message: everything the action needs to run again
 * after a restart. Freed with spool_job_free(). */
struct spool_job {
    char id[64]; /* "<qid>-<n>": also the idempotency key */
    /* The message's envelope, but its recipients are only those the rule matched; mail_from is
     * never NULL ("" for the null sender), as the actions pass it on as it is. */
    struct envelope env;
    char *rule_set;
    char *rule;
    int action_index; /* position in the rule's actions */
    char *action_type;
    time_t created;
    time_t next_attempt;
    int attempts;
    /* The last failed attempt: when, and its error (NULL before any), for sluice spool list. */
    time_t last_attempt;
    char *last_error;
    long long expire_after_ms;
    enum on_failure on_failure; /* RETRY or CONTINUE (a single attempt) */
    /* The action itself, as configured when the job was spooled: its parameters as canonical
     * JSON text and the config file they are relative to (see struct action). The job runs
     * with these even after its rule was edited, moved or removed. NULL in jobs of version 1
     * (those look their action up by rule_set, rule and action_index) and in DSN jobs. */
    char *action_params;
    char *action_config;
    char *msg_path;
    /* DSN jobs only (action_type "dsn"): per-recipient delivery-status fields, the From of the
     * report, where to send it, our name. NULL otherwise. */
    char *dsn_report;
    char *dsn_from;
    char *dsn_relay;
    char *hostname;
    struct buf content; /* the message as spooled (trace headers + original); loaded lazily */
    /* A job file spool_load_jobs left in place unread (only id and qid are set): never run,
     * but its message file must stay while it does, whatever its siblings do. */
    bool held;
};

/* A new job for action (type name, position action_index in rule) of rule_set/rule, for the
 * recipients m->env.rcpts[rcpts[0..n)], numbered seq within the message: the job's envelope
 * is a copy of the message's with those recipients only. Not yet written. */
struct spool_job *spool_job_new(const struct message *m, const char *rule_set, const char *rule,
                                int action_index, const char *type, const size_t *rcpts, size_t n,
                                int seq);

/* Paths under data_dir. */
void spool_dirs(const char *data_dir, char *msg_dir, char *job_dir, size_t len);
/* Writes the message with its trace headers (no "for" clause) to <msg_dir>/<qid>.eml and
 * fsyncs it; fills content with the same bytes. Returns 0 or a negative errno. */
int spool_write_message(const char *data_dir, const struct message *m, struct buf *content,
                        char *path, size_t pathlen, char *err, size_t errlen);
/* Writes (or rewrites, atomically) the job file and fsyncs it and its directory. */
int spool_write_job(const char *data_dir, const struct spool_job *j, char *err, size_t errlen);
/* Removes the job file; with last = true the message file too. */
void spool_remove_job(const char *data_dir, const struct spool_job *j, bool last);
/* What a job file is to this sluice. */
enum spool_file {
    SPOOL_FILE_OK,           /* a job it runs */
    SPOOL_FILE_HELD_VERSION, /* an unknown (newer) format version: left in place, never run */
    SPOOL_FILE_HELD_ACTION,  /* its "action" object is missing or malformed: likewise */
    SPOOL_FILE_BAD,          /* unreadable (not JSON, no envelope, no id): moved aside at start */
};
/* Reads the job file path (named name, "<id>.job") without changing anything: *out is the job
 * for OK, a held job (id, qid and msg_path only) for HELD_*, NULL for BAD; why says what is
 * wrong for the others. Caller frees *out. */
enum spool_file spool_read_job(const char *path, const char *name, struct spool_job **out,
                               char *why, size_t len);
/* Loads every job of the spool (caller frees each and the array). Unreadable job files are
 * logged and moved aside as .bad, never silently dropped; a job file of an unknown (newer)
 * format version, or one whose "action" object is missing or malformed, is logged and left
 * where it is, untouched, and comes back as a held job. The spool directories are made private
 * (0700) first: job files hold action parameters such as webhook secrets. */
size_t spool_load_jobs(const char *data_dir, struct spool_job ***out);
/* Reads j->msg_path into j->content unless loaded. Returns 0 or -1. */
int spool_job_load_content(struct spool_job *j, char *err, size_t errlen);
void spool_job_free(struct spool_job *j);

#endif
