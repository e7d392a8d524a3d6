/* What the rule chain decided for one message, as plain data: rules/eval.c fills it, the commit
 * stage (delivery/commit.c) carries it out, the caller logs it and hands the jobs on. It lives
 * in delivery/ because the commit stage below rules/ reads it. */
#ifndef SLUICE_PLAN_H
#define SLUICE_PLAN_H

#include <stddef.h>

#include "core/buf.h"
#include "delivery/maildir.h"

struct spool_job;
struct publish_record;

/* What became of one recipient in the chain: accepted (neither flag), refused or dropped. */
struct rcpt_outcome {
    int refused;      /* bounced: reply holds the SMTP reply */
    int dropped;      /* silently accepted, nothing delivered */
    int settled;      /* a delivering action ran for it (actions/action.h: delivers) */
    int undelivered;  /* nothing settled, refused or dropped it: server.undelivered applied
                         (reject: also refused; tempfail: the message failed; accept: neither) */
    char reply[512];  /* "550 5.7.1 text" */
    char sender[256]; /* bounce action's DSN sender, when given */
};

struct plan {
    /* The reply to DATA: the one the commit gives when it succeeds (a 250, or the first refusal
     * when every recipient was refused), or the temporary failure of a failed chain. The commit
     * turns a 250 into a 4xx when it cannot make everything durable. Without CRLF. */
    char reply[512];
    int failed;      /* the message failed (chain or commit): reply is a 4xx, nothing is kept */
    int sys_errno;   /* errno behind the failure, 0 when not a system error */
    char error[512]; /* what failed, for the log; "" on success */
    struct rcpt_outcome *outcomes; /* one per recipient of the message (replacements included) */
    size_t refused;                /* recipients refused by bounce actions */
    struct maildir_batch copies;   /* Maildir copies staged in tmp/ (written and fsynced) */
    char **stored;                 /* after a successful commit, "recipient:path in new/" of
                                      each copy, for the log (owned, freed by plan_free) */
    size_t nstored;
    struct spool_job **jobs; /* post-acceptance work to make durable in the spool; after
                                a successful commit, every durable job, the DSN last */
    size_t njobs, jobs_cap;
    struct spool_job *dsn_job; /* partial refusal: the DSN to queue, or NULL */
    const char *dsn;           /* partial refusal: "queued" or why no DSN is sent (static text) */
    int irrevocable;           /* a copy went where it cannot be taken back (an LMTP server) */
    struct buf rules;          /* names of the rules that applied, comma separated */
    struct buf actions;        /* "rule/action:outcome:duration" per action run, comma separated */
    /* The actions that succeeded in the session, counted (rules/metrics.h) only once the commit
     * kept the message: the evaluator's records, opaque here. */
    struct publish_record *published;
    size_t npublished, published_cap;
};

/* Adds a post-acceptance job (owned by the plan from now on). */
void plan_add_job(struct plan *p, struct spool_job *j);
/* Sets p->failed and the temporary failure reply for p->sys_errno (452 for a full disk). */
void plan_fail(struct plan *p);
/* Frees everything the plan owns (not the staged files: the commit removes or commits them). */
void plan_free(struct plan *p);

#endif
