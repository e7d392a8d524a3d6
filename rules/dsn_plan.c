#include "rules/dsn_plan.h"
#include "core/message.h"
#include "core/xalloc.h"
#include "delivery/plan.h"
#include "spool/spool.h"

#include <stdio.h>

void dsn_plan(struct plan *plan, const struct message *m, const char *rule_set,
              const char *hostname, const char *bounce_relay)
{
    const struct verdicts *v = &m->env.verdicts;
    const struct rcpt_outcome *out = plan->outcomes;
    if (!m->env.mail_from || !m->env.mail_from[0]) {
        plan->dsn = "not sent: null sender";
        return;
    }
    if (v->spf != VERDICT_PASS && !(v->dkim == VERDICT_PASS && v->dmarc == VERDICT_PASS)) {
        plan->dsn = "not sent: sender not authenticated (no SPF pass, no aligned DKIM pass)";
        return;
    }
    struct spool_job *j = spool_job_new(m, rule_set, "-", -1, "dsn", NULL, 0, (int)plan->njobs + 1);
    struct buf report = {0};
    const char *from = NULL;
    for (size_t i = 0; i < m->env.nrcpts; i++) {
        if (!out[i].refused)
            continue;
        char status[16] = "5.0.0";
        sscanf(out[i].reply, "%*s %15s", status);
        buf_printf(&report,
                   "\nFinal-Recipient: rfc822; %s\nAction: failed\nStatus: %s\n"
                   "Diagnostic-Code: smtp; %s\n",
                   m->env.rcpts[i], status, out[i].reply);
        if (!from && out[i].sender[0])
            from = out[i].sender;
    }
    j->dsn_report = xstrdup(buf_cstr(&report));
    buf_free(&report);
    j->dsn_from = from ? xstrdup(from) : xasprintf("MAILER-DAEMON@%s", hostname);
    j->dsn_relay = xstrdup(bounce_relay ? bounce_relay : ""); /* "": the sender's MX */
    j->hostname = xstrdup(hostname);
    j->expire_after_ms = 5LL * 24 * 3600 * 1000; /* RFC 5321 4.5.4.1: give up after days */
    j->on_failure = ON_FAILURE_RETRY;
    plan->dsn_job = j;
    plan->dsn = "queued";
}
