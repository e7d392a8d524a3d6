#include "delivery/plan.h"
#include "core/xalloc.h"
#include "spool/spool.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

void plan_fail(struct plan *p)
{
    p->failed = 1;
    if (p->sys_errno == ENOSPC || p->sys_errno == EDQUOT)
        snprintf(p->reply, sizeof p->reply,
                 "452 4.3.1 Insufficient system storage, try again later");
    else
        snprintf(p->reply, sizeof p->reply,
                 "451 4.3.0 Temporary failure storing the message, try again later");
}

void plan_add_job(struct plan *p, struct spool_job *j)
{
    p->jobs = xgrow(p->jobs, sizeof *p->jobs, &p->jobs_cap, p->njobs);
    p->jobs[p->njobs++] = j;
}

void plan_free(struct plan *p)
{
    buf_free(&p->rules);
    buf_free(&p->actions);
    for (size_t i = 0; i < p->njobs; i++)
        spool_job_free(p->jobs[i]);
    p->njobs = 0;
    free(p->jobs);
    p->jobs = NULL;
    spool_job_free(p->dsn_job);
    p->dsn_job = NULL;
    maildir_batch_free(&p->copies);
    for (size_t i = 0; i < p->nstored; i++)
        free(p->stored[i]);
    free(p->stored);
    p->stored = NULL;
    p->nstored = 0;
    free(p->outcomes);
    p->outcomes = NULL;
    free(p->published);
    p->published = NULL;
    p->npublished = 0;
}
