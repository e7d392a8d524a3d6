/* Order matters: the jobs are made durable before the Maildir renames, so a crash in between
 * leaves at worst a job for a message that was never acknowledged (retried, harmless), never a
 * delivered copy whose webhook or DSN is lost. */
#include "delivery/commit.h"
#include "core/log.h"
#include "core/message.h"
#include "core/xalloc.h"
#include "delivery/maildir.h"
#include "delivery/plan.h"
#include "spool/spool.h"

#include <stdio.h>
#include <stdlib.h>

static void drop_jobs(struct plan *p)
{
    for (size_t i = 0; i < p->njobs; i++)
        spool_job_free(p->jobs[i]);
    p->njobs = 0;
    spool_job_free(p->dsn_job);
    p->dsn_job = NULL;
}

static void unspool_jobs(const char *data_dir, struct plan *p)
{
    for (size_t i = 0; i < p->njobs; i++)
        spool_remove_job(data_dir, p->jobs[i], i + 1 == p->njobs);
}

/* Makes the jobs durable: the message file, then each job file. */
static int spool_jobs(const char *data_dir, const struct message *m, struct plan *p)
{
    if (p->njobs == 0)
        return 0;
    struct buf content = {0};
    char path[4096];
    int rc =
        spool_write_message(data_dir, m, &content, path, sizeof path, p->error, sizeof p->error);
    for (size_t i = 0; rc == 0 && i < p->njobs; i++) {
        struct spool_job *j = p->jobs[i];
        free(j->msg_path);
        j->msg_path = xstrdup(path);
        buf_reset(&j->content);
        buf_append(&j->content, content.data, content.len);
        rc = spool_write_job(data_dir, j, p->error, sizeof p->error);
    }
    buf_free(&content);
    if (rc < 0)
        unspool_jobs(data_dir, p);
    return rc;
}

/* Where each staged copy will be once committed, with its recipient (the batch forgets both
 * when it commits). */
static void note_stored(struct plan *p, const struct message *m)
{
    p->stored = xcalloc(p->copies.n ? p->copies.n : 1, sizeof *p->stored);
    for (size_t i = 0; i < p->copies.n; i++) {
        size_t tag = (size_t)p->copies.items[i].tag;
        struct buf b = {0};
        buf_printf(&b, "%s:%s", tag < m->env.nrcpts ? m->env.rcpts[tag] : "",
                   p->copies.items[i].new_path);
        p->stored[p->nstored++] = xstrdup(buf_cstr(&b));
        buf_free(&b);
    }
}

static void forget_stored(struct plan *p)
{
    for (size_t i = 0; i < p->nstored; i++)
        free(p->stored[i]);
    free(p->stored);
    p->stored = NULL;
    p->nstored = 0;
}

const char *delivery_commit(struct plan *p, const struct message *m, const char *data_dir)
{
    if (!p->failed && p->reply[0] == '2') {
        if (p->dsn_job) {
            plan_add_job(p, p->dsn_job);
            p->dsn_job = NULL;
        }
        int rc = spool_jobs(data_dir, m, p);
        if (rc == 0) {
            note_stored(p, m);
            rc = maildir_commit(&p->copies, p->error, sizeof p->error);
            if (rc < 0) {
                forget_stored(p);
                unspool_jobs(data_dir, p);
            }
        }
        if (rc < 0) {
            p->failed = 1;
            p->sys_errno = -rc;
        }
    }
    if (p->failed || p->reply[0] != '2') {
        /* A refusal delivers nothing; a failure takes back what was staged. */
        maildir_abort(&p->copies);
        drop_jobs(p);
    }
    if (p->failed) {
        if (p->irrevocable)
            log_msg(LOG_WARN,
                    "qid=%s copies were already delivered over LMTP before the failure: the "
                    "sender's retry will deliver them again",
                    m->env.qid);
        if (p->reply[0] != '4') /* keep a temporary failure the chain already gave */
            plan_fail(p);
        p->refused = 0;
    }
    return p->reply;
}
