#include "rules/dsn_plan.h"
#include "core/message.h"
#include "core/utf8.h"
#include "core/xalloc.h"
#include "delivery/plan.h"
#include "spool/spool.h"

#include <stdio.h>
#include <string.h>

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
    size_t wanted = 0;
    for (size_t i = 0; i < m->env.nrcpts; i++)
        wanted += out[i].refused && envelope_rcpt_wants_failure_dsn(&m->env, i);
    if (wanted == 0) {
        plan->dsn = "not sent: the client's NOTIFY excludes FAILURE";
        return;
    }
    struct spool_job *j = spool_job_new(m, rule_set, "-", -1, "dsn", NULL, 0, (int)plan->njobs + 1);
    struct buf report = {0};
    const char *from = NULL;
    for (size_t i = 0; i < m->env.nrcpts; i++) {
        if (!out[i].refused || !envelope_rcpt_wants_failure_dsn(&m->env, i))
            continue;
        char status[16] = "5.0.0";
        sscanf(out[i].reply, "%*s %15s", status);
        buf_puts(&report, "\n");
        /* RFC 3464 §2.3.1: ORCPT as the client gave it, "addr-type; address". */
        const char *orcpt = m->env.rcpt_dsn[i].orcpt;
        const char *semi = orcpt ? strchr(orcpt, ';') : NULL;
        if (semi) /* always, as the parser keeps it; a hand-edited job file may differ */
            buf_printf(&report, "Original-Recipient: %.*s; %s\n", (int)(semi - orcpt), orcpt,
                       semi + 1);
        /* RFC 6533 §3: utf-8 address type for a non-ASCII recipient. */
        buf_printf(&report,
                   "Final-Recipient: %s; %s\nAction: failed\nStatus: %s\n"
                   "Diagnostic-Code: smtp; %s\n",
                   utf8_non_ascii(m->env.rcpts[i]) ? "utf-8" : "rfc822", m->env.rcpts[i], status,
                   out[i].reply);
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
