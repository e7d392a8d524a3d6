/* Judging one message: run the rule chain of a rule set (SES semantics: every applying rule
 * runs, in order, until a stop), then commit its deliveries. Runs on a worker thread. */
#ifndef SLUICE_EVAL_H
#define SLUICE_EVAL_H

#include "core/buf.h"

struct rule_set;
struct message;
struct rcpt_outcome;
struct spool_job;
struct server_cfg;
struct json_t;

struct eval_result {
    char reply[512];    /* the final reply to DATA, without CRLF */
    struct buf rules;   /* names of the rules that applied, comma separated */
    struct buf actions; /* "rule/action:outcome:duration" per action run, comma separated */
    char error[512];    /* what failed, for the log; "" on success */
    int sys_errno;
    size_t refused;                /* recipients refused by bounce actions */
    struct rcpt_outcome *outcomes; /* one per recipient of the message */
    struct spool_job **jobs;       /* post-acceptance work, durable in the spool on success */
    size_t njobs, jobs_cap;
    const char *dsn; /* partial bounce: "queued" or why no DSN is sent (static text) */
    /* `sluice test` only (see struct eval_opts) */
    int dry_run;
    int deliver_inline;
    struct json_t *trace; /* per rule: applied or why not, actions with details */
};

/* Fills res (caller frees with eval_result_free). Every staged copy is committed on success and
 * removed on failure, so a 250 reply means every copy is on disk and a 4xx means none is. */
void rules_evaluate(const struct rule_set *rs, struct message *m, const struct server_cfg *sc,
                    struct eval_result *res);
void eval_result_free(struct eval_result *res);

/* For `sluice test`: dry_run says what would be done and changes nothing (no files, no
 * network); deliver_inline runs post-acceptance actions now instead of spooling them; trace
 * fills res->trace. */
struct eval_opts {
    int dry_run;
    int deliver_inline;
    int trace;
};
void rules_evaluate_opts(const struct rule_set *rs, struct message *m, const struct server_cfg *sc,
                         const struct eval_opts *opts, struct eval_result *res);

#endif
