/* The message job: everything between the end of DATA and the reply to it. The session hands
 * over a finished message; on a worker thread the job judges it (authentication, scans),
 * evaluates the rules and commits what they decided, and records it for DMARC reports; back on
 * the event loop it logs the message line, hands post-acceptance jobs to the retry scheduler and
 * gives the session the reply to send. As OpenSMTPD's smtp_tx_commit hands to the queue and
 * Postfix's smtpd to cleanup, the session knows nothing of what happens in between. */
#ifndef SLUICE_MESSAGE_JOB_H
#define SLUICE_MESSAGE_JOB_H

struct config;
struct message;
struct plan;
struct retry;
struct rule_set;
struct worker_pool;

struct message_job_result {
    const char *reply;     /* the reply to DATA, without CRLF; valid during the callback only */
    unsigned dsn_not_sent; /* recipients refused after a 250 whose DSN is not sent */
};

/* Called on the event loop once the message is judged and committed. */
typedef void (*message_job_done_fn)(void *arg, const struct message_job_result *r);

/* Takes ownership of m and of the reference cfg (released when the job ends); rs belongs to cfg.
 * The message's client fields (client_ip, helo, …) must be filled: the log line uses them. */
void message_job_submit(struct worker_pool *pool, struct retry *retry, struct message *m,
                        struct config *cfg, const struct rule_set *rs, message_job_done_fn done,
                        void *arg);

/* The "message" log line, for the job's end and for messages the session gives up before the
 * end of DATA (client and helo then come from the session; p is NULL). With the plan p: the
 * rules and actions, and once committed the Maildir copies and spooled jobs per recipient.
 * undelivered lists the recipients no delivering action reached (comma separated).
 * undelivered and error may be NULL. */
void message_log(const struct message *m, const char *client, const char *helo, const char *result,
                 struct plan *p, const char *undelivered, const char *error);

#endif
