/* The commit stage: carries out a plan (delivery/plan.h) so that its reply is true. A 2xx reply
 * is given only when every staged Maildir copy is in new/ and every job is durable in the spool;
 * when that fails, what was done is taken back and the reply becomes a 4xx. Any other reply
 * (a refusal, a failed chain) keeps nothing. Runs on a worker thread. */
#ifndef SLUICE_COMMIT_H
#define SLUICE_COMMIT_H

struct plan;
struct message;

/* Commits p for message m, spooling into data_dir. Updates p->reply (and p->failed, p->error,
 * p->sys_errno on failure) and returns p->reply. On success p->jobs holds the durable jobs for
 * the retry scheduler, the DSN last. */
const char *delivery_commit(struct plan *p, const struct message *m, const char *data_dir);

#endif
