/* The DSN for a partial refusal: some recipients were refused after others were accepted, so
 * the refusal can only reach the sender as a delivery status notification. */
#ifndef SLUICE_DSN_PLAN_H
#define SLUICE_DSN_PLAN_H

struct plan;
struct message;

/* Plans the DSN job (plan->dsn_job) for the refused recipients of plan->outcomes, or says in
 * plan->dsn why none is sent. One is queued only for an authenticated, non-null sender (no
 * backscatter to forged addresses), through bounce_relay (NULL: the sender domain's MX), from
 * the bounce action's sender or MAILER-DAEMON@hostname. */
void dsn_plan(struct plan *plan, const struct message *m, const char *rule_set,
              const char *hostname, const char *bounce_relay);

#endif
